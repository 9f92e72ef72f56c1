package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// cheap keeps the tests fast; the format and checks are the same.
var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestPassword(t *testing.T) {
	h, err := HashPasswordParams("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("hash contains the password")
	}
	h2, err := HashPasswordParams("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	if err := ValidHash(h); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	tests := []struct {
		name     string
		hash     string
		password string
		want     error
	}{
		{"match", h, "correct horse", nil},
		{"wrong password", h, "correct horse.", ErrMismatch},
		{"case differs", h, "Correct horse", ErrMismatch},
		{"empty password", h, "", ErrMismatch},
		{"huge password", h, strings.Repeat("x", MaxPasswordLen+1), ErrMismatch},
		{"empty hash", "", "correct horse", ErrBadHash},
		{"bcrypt hash", "$2y$10$abcdefghijklmnopqrstuu", "correct horse", ErrBadHash},
		{"argon2i", strings.Replace(h, "argon2id", "argon2i", 1), "correct horse", ErrBadHash},
		{"other version", strings.Replace(h, "v=19", "v=16", 1), "correct horse", ErrBadHash},
		{"memory bomb", strings.Replace(h, "m=64", "m=4294967295", 1), "correct horse", ErrBadHash},
		{"zero passes", strings.Replace(h, "t=1", "t=0", 1), "correct horse", ErrBadHash},
		{"trailing junk in params", strings.Replace(h, "p=1", "p=1x", 1), "correct horse", ErrBadHash},
		{"salt not base64", strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!!", parts[5]}, "$"), "correct horse", ErrBadHash},
		{"hash cut", h[:len(h)-30], "correct horse", ErrBadHash},
		{"extra field", h + "$x", "correct horse", ErrBadHash},
		{"other params same hash", strings.Replace(h, "t=1", "t=2", 1), "correct horse", ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword(tc.hash, tc.password)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("CheckPassword = %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "horse") {
				t.Fatalf("error %q quotes the password", err)
			}
		})
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	for _, pw := range []string{"", strings.Repeat("x", MaxPasswordLen+1)} {
		if _, err := HashPasswordParams(pw, cheap); !errors.Is(err, ErrBadPassword) {
			t.Errorf("HashPassword(%d bytes) err = %v, want ErrBadPassword", len(pw), err)
		}
	}
	if _, err := HashPasswordParams("x", Params{}); err == nil {
		t.Error("zero params accepted")
	}
}

func TestDefaultParams(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h, "$m=19456,t=2,p=1$") {
		t.Fatalf("default hash %q does not use the OWASP parameters", h)
	}
	if err := CheckPassword(h, "pw"); err != nil {
		t.Fatal(err)
	}
	if NeedsRehash(h, DefaultParams()) {
		t.Fatal("fresh default hash needs rehash")
	}
	cheapHash, _ := HashPasswordParams("pw", cheap)
	if !NeedsRehash(cheapHash, DefaultParams()) {
		t.Fatal("cheap hash does not need rehash")
	}
}

func TestToken(t *testing.T) {
	tok, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 {
		t.Fatalf("token %q: want %s and 43 base64url characters", tok, TokenPrefix)
	}
	if !bytes.Equal(hash, HashToken(tok)) || !bytes.Equal(hash, HashToken(" "+tok+"\n")) {
		t.Fatal("HashToken does not give the hash NewToken gave")
	}
	if len(hash) != 32 || bytes.Contains(hash, []byte(tok)) {
		t.Fatal("hash is not a SHA-256 of the token")
	}
	tok2, hash2, _ := NewToken()
	if tok == tok2 || bytes.Equal(hash, hash2) {
		t.Fatal("two tokens are equal")
	}
	if bytes.Equal(HashToken(tok[:len(tok)-1]), hash) {
		t.Fatal("a different token has the same hash")
	}
}
