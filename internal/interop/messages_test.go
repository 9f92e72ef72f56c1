package interop

import (
	"bytes"
	"fmt"
	"strings"
)

// shape is a message with a feature that DKIM implementations have been
// known to disagree on.
type shape struct {
	name string
	msg  []byte
}

const baseHeader = "From: Alice Example <alice@example.com>\r\n" +
	"To: Bob <bob@example.org>\r\n" +
	"Subject: interop\r\n" +
	"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n" +
	"Message-ID: <interop@example.com>\r\n" +
	"MIME-Version: 1.0\r\n"

const plainBody = "Hello,\r\n\r\nthis message crosses DKIM implementations.\r\n\r\n-- \r\nAlice\r\n"

func withType(ctype, cte string) string {
	h := baseHeader + "Content-Type: " + ctype + "\r\n"
	if cte != "" {
		h += "Content-Transfer-Encoding: " + cte + "\r\n"
	}
	return h
}

// shapes are the messages every signer and verifier is tried on, all CRLF
// except "lf".
func shapes() []shape {
	ascii := withType("text/plain; charset=us-ascii", "7bit")
	var many strings.Builder
	many.WriteString("To: ")
	for i := range 500 {
		if i > 0 {
			many.WriteString(",\r\n ")
		}
		fmt.Fprintf(&many, "Recipient %d <r%d@example.org>", i, i)
	}
	many.WriteString("\r\n")
	var big strings.Builder
	for i := 0; big.Len() < 300<<10; i++ {
		// Odd line lengths with trailing white space so that lines and
		// CRLFs fall across every buffer boundary of a streaming signer.
		fmt.Fprintf(&big, "line %d %s \t\r\n", i, strings.Repeat("ab ", i%97))
	}
	return []shape{
		{"plain", []byte(ascii + "\r\n" + plainBody)},
		{"folded-headers", []byte(strings.Replace(ascii, "Subject: interop\r\n",
			"Subject: a subject long enough\r\n to be folded over\r\n\tthree lines\r\n", 1) +
			"\r\n" + plainBody)},
		{"header-spacing", []byte(strings.NewReplacer(
			"Subject: interop\r\n", "Subject:no space after the colon,  two inside \t\r\n",
			"To: Bob", "To: \t Bob").Replace(ascii) + "\r\n" + plainBody)},
		{"header-name-case", []byte(strings.NewReplacer(
			"Subject:", "SUBJECT:", "Message-ID:", "message-id:", "From:", "fRoM:").Replace(ascii) + "\r\n" + plainBody)},
		{"repeated-fields", []byte(ascii + "Cc: first@example.org\r\nX-Other: between\r\nCc: second@example.org\r\n" +
			"\r\n" + plainBody)},
		{"8bit-utf8", []byte(withType("text/plain; charset=utf-8", "8bit") + "\r\n" +
			"Grüße aus Köln, 你好, Привет — ✓\r\n")},
		{"latin1", []byte(withType("text/plain; charset=iso-8859-1", "8bit") + "\r\n" +
			"Gr\xfc\xdfe aus K\xf6ln, caf\xe9 \xe0 \xff\r\n")},
		{"8bit-header", []byte(strings.Replace(withType("text/plain; charset=utf-8", "8bit"),
			"Subject: interop", "Subject: Grüße, 你好 (RFC 6532)", 1) + "\r\n" + plainBody)},
		{"empty-body", []byte(ascii + "\r\n")},
		{"header-only", []byte(ascii)},
		{"lone-cr", []byte(ascii + "\r\n" + "a\rb \r c\r\nend\r\n")},
		{"final-lone-cr", []byte(ascii + "\r\n" + "end\r")},
		{"trailing-blank-lines", []byte(ascii + "\r\n" + "text\r\n\r\n\r\n \r\n\t\r\n\r\n")},
		{"white-space", []byte(ascii + "\r\n" + "a  \t b   \r\n\t lead\r\nend \t \r\n")},
		{"no-final-crlf", []byte(ascii + "\r\n" + "first line\r\nlast line without a line break")},
		{"lf", []byte(strings.ReplaceAll(ascii+"\r\n"+plainBody, "\r\n", "\n"))},
		{"long-line", []byte(ascii + "\r\n" + strings.Repeat("x", 20000) + "\r\n")},
		{"many-recipients", []byte(strings.Replace(ascii, "To: Bob <bob@example.org>\r\n", many.String(), 1) +
			"\r\n" + plainBody)},
		{"300k-body", []byte(ascii + "\r\n" + big.String())},
	}
}

// tamper changes the body of a message: the first letter becomes another,
// or, when the body has no letter, a line is added.
func tamper(msg []byte) []byte {
	out := bytes.Clone(msg)
	body := bytes.Index(out, []byte("\r\n\r\n")) + 4
	if body < 4 {
		body = bytes.Index(out, []byte("\n\n")) + 2
	}
	if body < 2 {
		// No body at all: give it one.
		return append(out, "\r\ntampered\r\n"...)
	}
	for i := body; i >= 2 && i < len(out); i++ {
		if c := out[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			out[i] ^= 0x01 // 'a' <-> 'b', 'x' <-> 'y': still a letter
			return out
		}
	}
	if bytes.HasSuffix(out, []byte("\n")) && !bytes.HasSuffix(out, []byte("\r\n")) {
		return append(out, "tampered\n"...)
	}
	return append(out, "tampered\r\n"...)
}
