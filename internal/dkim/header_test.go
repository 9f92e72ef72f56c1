package dkim

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// TestMaxHeaderBytes: the header bound holds at its exact edge, for the
// Signer and the Verifier alike, however the message is cut into writes.
func TestMaxHeaderBytes(t *testing.T) {
	keys := loadFixedKeys(t)
	header := mutMessage[:strings.Index(mutMessage, "\r\n\r\n")+2]
	n := len(header)
	readers := map[string]func(string) io.Reader{
		"one write":    func(s string) io.Reader { return strings.NewReader(s) },
		"byte by byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
	}
	for _, tc := range []struct {
		name string
		max  int
		err  error
	}{
		{"header one byte under the limit", n + 1, nil},
		{"header exactly at the limit", n, nil},
		{"header one byte over the limit", n - 1, ErrHeaderTooLarge},
	} {
		for how, r := range readers {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				_, err := Sign(r(mutMessage), &SignOptions{
					Keys:           []SignKey{{Domain: "example.com", Selector: "ed", Signer: keys.ed}},
					MaxHeaderBytes: tc.max,
				})
				if !errors.Is(err, tc.err) { // errors.Is(err, nil) means err == nil
					t.Errorf("Sign: error %v, want %v", err, tc.err)
				}
				_, err = Verify(context.Background(), r(mutMessage), &VerifyOptions{
					Resolver:       mapResolver{},
					MaxHeaderBytes: tc.max,
				})
				if !errors.Is(err, tc.err) { // errors.Is(err, nil) means err == nil
					t.Errorf("Verify: error %v, want %v", err, tc.err)
				}
			})
		}
	}
}

// ParseHeader and Values give each field's value as written after the
// colon, folding included; the empty line that ends a header may follow.
func TestHeaderValues(t *testing.T) {
	tests := []struct {
		name, header, field string
		want                []string
		err                 bool
	}{
		{"with the empty line", "From: a@b.example\r\nSubject: x\r\n\r\n", "From", []string{" a@b.example"}, false},
		{"without it", "From: a@b.example\r\nSubject: x\r\n", "subject", []string{" x"}, false},
		{"folded, any case", "from: a\r\n\t b\r\n  c\r\nTo:\r\n d\r\n", "FROM", []string{" a\r\n\t b\r\n  c"}, false},
		{"twice, in order", "From: 1\r\nX: y\r\nFrom: 2\r\n\r\n", "From", []string{" 1", " 2"}, false},
		{"name with space before colon", "From : a\r\n\r\n", "From", []string{" a"}, false},
		{"none", "Subject: x\r\n\r\n", "From", nil, false},
		{"empty header", "\r\n", "From", nil, false},
		{"first line folded (RFC 5322 §2.2.3)", " x: y\r\n", "x", nil, true},
		{"no colon", "From a@b\r\n", "From", nil, true},
		{"space in the name (RFC 5322 §3.6.8)", "x y: z\r\n", "x y", nil, true},
		{"an empty line inside", "A: b\r\n\r\nB: c\r\n", "B", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHeader([]byte(tt.header))
			if tt.err {
				if !errors.Is(err, ErrMalformedHeader) {
					t.Fatalf("error %v, want ErrMalformedHeader", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Values(tt.field); !slices.Equal(got, tt.want) {
				t.Errorf("Values(%q) = %q, want %q", tt.field, got, tt.want)
			}
		})
	}
}

// A field folded over many lines (RFC 5322 §2.2.3) costs time and memory in
// proportion to its length: ten times the lines, not a hundred times the
// allocations.
func TestParseHeaderManyFoldedLines(t *testing.T) {
	allocs := func(lines int) float64 {
		h := []byte("X-Folded: a" + strings.Repeat("\r\n b", lines) + "\r\nFrom: a@b.example\r\n\r\n")
		if got, err := ParseHeader(h); err != nil || len(got.Values("X-Folded")) != 1 || got.Values("From")[0] != " a@b.example" {
			t.Fatalf("%d lines: %v", lines, err)
		}
		return testing.AllocsPerRun(3, func() { ParseHeader(h) })
	}
	small, large := allocs(2000), allocs(20000)
	if large > small+20 {
		t.Errorf("allocations: %v for 2,000 folded lines, %v for 20,000", small, large)
	}
}

// The fields share one copy of the header; appending to one field's bytes
// (as a caller adding a line end may) must not write over the next field.
func TestParseHeaderFieldsAreSeparate(t *testing.T) {
	fields, err := parseHeader([]byte("A: 1\r\n  folded\r\nB: 2\nC: 3"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A: 1\r\n  folded\r\n", "B: 2\r\n", "C: 3\r\n"}
	for i, f := range fields {
		if string(f.raw) != want[i] {
			t.Fatalf("field %d raw %q, want %q", i, f.raw, want[i])
		}
	}
	_ = append(fields[0].raw, "XXXX"...)
	_ = append(fields[1].raw, "YYYY"...)
	if string(fields[1].raw) != want[1] || string(fields[2].raw) != want[2] {
		t.Errorf("appending to a field changed the next: %q %q", fields[1].raw, fields[2].raw)
	}
	if fields[0].key != "a" || fields[1].name != "B" {
		t.Errorf("names %q/%q, %q/%q", fields[0].name, fields[0].key, fields[1].name, fields[1].key)
	}
}
