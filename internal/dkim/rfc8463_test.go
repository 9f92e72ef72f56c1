package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"
)

// rfc8463 loads the RFC 8463 Appendix A material from testdata/rfc8463.
type rfc8463 struct {
	signed   []byte
	unsigned []byte
	sigs     []field // the two DKIM-Signature fields, as printed
	ed, rsa  crypto.Signer
	records  map[string]string
}

func loadRFC8463(t testing.TB) *rfc8463 {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/rfc8463/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v := &rfc8463{signed: read("signed.eml"), records: map[string]string{}}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(read("ed25519.seed"))))
	if err != nil {
		t.Fatal(err)
	}
	v.ed = ed25519.NewKeyFromSeed(seed)
	block, _ := pem.Decode(read("rsa.pem"))
	rk, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	v.rsa = rk
	for _, line := range strings.Split(strings.TrimSpace(string(read("records.txt"))), "\n") {
		name, value, _ := strings.Cut(line, " ")
		v.records[name] = value
	}
	end := bytes.Index(v.signed, []byte("\r\n\r\n"))
	fields, err := parseHeader(v.signed[:end+2])
	if err != nil {
		t.Fatal(err)
	}
	var rest [][]byte
	for _, f := range fields {
		if f.key == "dkim-signature" {
			v.sigs = append(v.sigs, f)
		} else {
			rest = append(rest, f.raw)
		}
	}
	v.unsigned = append(bytes.Join(rest, nil), v.signed[end+2:]...)
	return v
}

func (v *rfc8463) resolver() Resolver {
	return ResolverFunc(func(_ context.Context, name string) ([]string, error) {
		if r, ok := v.records[name]; ok {
			return []string{r}, nil
		}
		return nil, ErrKeyNotFound
	})
}

// TestRFC8463Reproduce signs the RFC 8463 A.3 message with the A.1 keys and
// the A.3 signature fields, and gets the printed bh= and b= back, byte for
// byte, for both the Ed25519 and the RSA signature.
func TestRFC8463Reproduce(t *testing.T) {
	v := loadRFC8463(t)
	// The body hash: relaxed canonicalization and SHA-256 of the A.3 body.
	body := v.unsigned[bytes.Index(v.unsigned, []byte("\r\n\r\n"))+4:]
	h := newTestHash()
	bc := newBodyCanon(Relaxed, h)
	bc.Write(body)
	bc.Close()
	end := bytes.Index(v.unsigned, []byte("\r\n\r\n"))
	fields, err := parseHeader(v.unsigned[:end+2])
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.Signer{"brisbane": v.ed, "test": v.rsa}
	for _, sf := range v.sigs {
		sig, err := ParseSignature(sf.value())
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Sum(nil); !bytes.Equal(got, sig.BodyHash) {
			t.Errorf("s=%s: bh=%s, want %s", sig.Selector, b64(got), b64(sig.BodyHash))
		}
		prefix := stripSignatureValue(sf.raw)
		b, err := signHeader(keys[sig.Selector], Relaxed, fields, sig.Headers, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, sig.Data) {
			t.Errorf("s=%s: b=%s\nwant b=%s", sig.Selector, b64(b), b64(sig.Data))
		}
		// Put our value in place of the printed one, folded as printed: the
		// whole field comes back byte for byte.
		printed := string(sf.raw)
		i := strings.Index(printed, " b=") + len(" b=")
		rebuilt := printed[:i] + refold(b64(b), printed[i:])
		if rebuilt != printed {
			t.Errorf("s=%s: rebuilt field\n%q\nwant\n%q", sig.Selector, rebuilt, printed)
		}
	}
}

// refold lays value out with the line breaks of like.
func refold(value, like string) string {
	var out strings.Builder
	for _, line := range strings.SplitAfter(like, "\r\n") {
		n := len(strings.TrimSpace(line))
		if n > len(value) {
			n = len(value)
		}
		if strings.HasPrefix(line, " ") {
			out.WriteString(" ")
		}
		out.WriteString(value[:n])
		value = value[n:]
		if strings.HasSuffix(line, "\r\n") {
			out.WriteString("\r\n")
		}
	}
	return out.String()
}

func TestRFC8463Verify(t *testing.T) {
	v := loadRFC8463(t)
	res, err := Verify(context.Background(), bytes.NewReader(v.signed), &VerifyOptions{
		Resolver: v.resolver(),
		Now:      func() time.Time { return time.Unix(1528637909, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("got %d results, want 2", len(res))
	}
	for i, r := range res {
		if r.Status != StatusPass {
			t.Errorf("signature %d (s=%s): %s: %v", i, r.Signature.Selector, r.Status, r.Err)
		}
	}
	if res[0].KeyBits != 256 || res[1].KeyBits != 1024 {
		t.Errorf("key sizes %d, %d; want 256, 1024", res[0].KeyBits, res[1].KeyBits)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
