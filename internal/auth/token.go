package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// TokenPrefix starts every API token, so that secret scanners and people
// recognise one in a paste.
const TokenPrefix = "dkimd_"

// NewToken makes a random API or session token (256 bits) and its SHA-256
// hash. Show the token once and store only the hash.
func NewToken() (token string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("auth: token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken gives the SHA-256 hash under which a token is stored and looked
// up. A plain hash suffices: tokens carry 256 random bits, so there is
// nothing to guess, and lookup by hash needs no per-row salt. White space
// around the token (a copy-paste artefact) is ignored.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return sum[:]
}
