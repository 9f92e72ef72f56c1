package dkim

import (
	"context"
	"errors"
	"io"
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
