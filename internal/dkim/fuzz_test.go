package dkim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzParseTagList: no panic, and a list that parses, written back as
// "name=value; ...", parses to the same list.
func FuzzParseTagList(f *testing.F) {
	for _, s := range []string{
		"v=1; a=rsa-sha256; d=example.com",
		"v=DKIM1; k=rsa; p=",
		" a = b ;\tc= d e ;",
		"a=b\r\n c=d",
		"a=b; a=c",
		";",
		"",
		"a",
		"1a=b",
		"a=b;;c=d",
		"a=\x00",
		"a=b=c",
	} {
		f.Add(s)
	}
	for _, tc := range recordCases(f) {
		f.Add(tc.txt)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseTagList(s)
		if err != nil {
			if !errors.Is(err, ErrTagList) {
				t.Fatalf("error %v is not ErrTagList", err)
			}
			return
		}
		parts := make([]string, len(l))
		for i, tag := range l {
			parts[i] = tag.Name + "=" + tag.Value
		}
		again, err := ParseTagList(strings.Join(parts, "; "))
		if err != nil {
			t.Fatalf("re-serialized %q: %v", strings.Join(parts, "; "), err)
		}
		if len(again) != len(l) {
			t.Fatalf("%d tags, then %d", len(l), len(again))
		}
		for i := range l {
			if l[i] != again[i] {
				t.Fatalf("tag %d: %+v, then %+v", i, l[i], again[i])
			}
		}
	})
}

// recordErrors are the failure classes of ParseRecord.
var recordErrors = []error{
	ErrRecordSyntax, ErrRecordVersion, ErrRecordNoKey, ErrKeyRevoked,
	ErrKeyType, ErrKeyDecode, ErrKeyTooShort, ErrKeyService,
}

// FuzzParseRecord: no panic, every error is one of the record error
// classes, and a record without error has a key of its k= type.
func FuzzParseRecord(f *testing.F) {
	for _, tc := range recordCases(f) {
		f.Add(tc.txt)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			for _, class := range recordErrors {
				if errors.Is(err, class) {
					return
				}
			}
			t.Fatalf("error %v is not a record error class", err)
		}
		switch r.PublicKey.(type) {
		case nil:
			t.Fatal("no error and no key")
		}
		if r.KeyType != "rsa" && r.KeyType != "ed25519" {
			t.Fatalf("k=%s accepted", r.KeyType)
		}
	})
}

// FuzzParseSignature: no panic; an error is ErrSignatureSyntax, a success
// has v=1 and non-empty d=, s= and h= (RFC 6376 §3.5).
func FuzzParseSignature(f *testing.F) {
	keys := loadFixedKeys(f)
	e := &mutEnv{alg: "rsa"}
	signed := handSign(f, keys.rsa2048, e.baseSignature(), mutMessage)
	f.Add(firstField(f, signed))
	s := e.baseSignature()
	s.Identity, s.BodyLength = "@example.com", 10
	f.Add(firstField(f, handSign(f, keys.rsa2048, s, mutMessage)))
	for _, v := range []string{
		"v=1; a=rsa-sha256; b=; bh=; d=x.example; h=from; s=s",
		"v=1; a=ed25519-sha256; c=simple; b=AA==; bh=AA==; d=x.example; h=from : to; s=s; l=99999999999999999999999; t=1; x=2",
		"v=2",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseSignature(v)
		if err != nil {
			if !errors.Is(err, ErrSignatureSyntax) {
				t.Fatalf("error %v is not ErrSignatureSyntax", err)
			}
			return
		}
		// a= may be empty here: the verifier refuses it (ErrAlgorithm).
		if s.Version != "1" || s.Domain == "" || s.Selector == "" || len(s.Headers) == 0 {
			t.Fatalf("parsed without a required tag: %+v", s)
		}
		if s.BodyLength < -1 {
			t.Fatalf("l=%d", s.BodyLength)
		}
	})
}

// firstField returns the value of the DKIM-Signature field on top of msg.
func firstField(t testing.TB, msg string) string {
	t.Helper()
	end := strings.Index(msg, "\r\n\r\n")
	fields, err := parseHeader([]byte(msg[:end+2]))
	if err != nil {
		t.Fatal(err)
	}
	return fields[0].value()
}

var statuses = map[Status]bool{
	StatusPass: true, StatusFail: true, StatusPolicy: true, StatusNeutral: true,
	StatusTempError: true, StatusPermError: true,
}

// FuzzVerify puts arbitrary messages through Verify with a fixed resolver:
// no panic; the only errors for the message as a whole are the header
// errors; every result has a known status, an error exactly when it is not
// a pass; and verifying one byte at a time gives the same results.
func FuzzVerify(f *testing.F) {
	keys := loadFixedKeys(f)
	resolver := mapResolver{
		RecordName("rsa", "example.com"): {record(f, keys.rsa2048.Public())},
		RecordName("ed", "example.com"):  {record(f, keys.ed.Public())},
	}
	for _, e := range []*mutEnv{{alg: "rsa", key: keys.rsa2048}, {alg: "ed", key: keys.ed}} {
		signed := handSign(f, e.key, e.baseSignature(), mutMessage)
		f.Add([]byte(signed))
		f.Add([]byte(strings.ReplaceAll(signed, "\r\n", "\n")))
		f.Add([]byte(strings.Replace(signed, "numbers", "Numbers", 1)))
		s := e.baseSignature()
		s.BodyLength = 5
		f.Add([]byte(handSign(f, e.key, s, mutMessage)))
		for _, m := range mutations(f) {
			if m.msg != nil && m.sig == nil && (m.only == "" || m.only == e.alg) {
				f.Add([]byte(m.msg(e, signed)))
			}
		}
	}
	f.Add([]byte(mutMessage))
	f.Add([]byte("DKIM-Signature: v=1; garbage\r\n\r\n"))
	f.Add([]byte("\r\n"))
	f.Add([]byte(""))
	f.Add([]byte(" leading white space\r\n\r\n"))
	opts := &VerifyOptions{Resolver: resolver, Now: clockAt(fixedNow.Add(time.Minute)), MaxHeaderBytes: 64 << 10}
	f.Fuzz(func(t *testing.T, msg []byte) {
		res, err := Verify(context.Background(), strings.NewReader(string(msg)), opts)
		if err != nil {
			if !errors.Is(err, ErrMalformedHeader) && !errors.Is(err, ErrHeaderTooLarge) {
				t.Fatalf("Verify error %v is not a header error", err)
			}
		}
		for i, r := range res {
			if !statuses[r.Status] {
				t.Fatalf("result %d: status %q", i, r.Status)
			}
			if (r.Status == StatusPass) != (r.Err == nil) {
				t.Fatalf("result %d: status %s with error %v", i, r.Status, r.Err)
			}
		}
		if len(msg) > 4096 {
			return
		}
		again, err2 := Verify(context.Background(), iotest.OneByteReader(strings.NewReader(string(msg))), opts)
		if (err == nil) != (err2 == nil) || len(again) != len(res) {
			t.Fatalf("one write: %d results, %v; byte by byte: %d results, %v", len(res), err, len(again), err2)
		}
		for i := range res {
			if res[i].Status != again[i].Status {
				t.Fatalf("result %d: %s in one write, %s byte by byte", i, res[i].Status, again[i].Status)
			}
		}
	})
}
