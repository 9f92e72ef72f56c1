package lifecycle

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/dkimd/dkimd/internal/store"
)

// secretInKeyFile finds the secret in a BIND key file (key "n" { algorithm
// hmac-sha256; secret "…"; };).
var secretInKeyFile = regexp.MustCompile(`secret\s+"([^"]+)"`)

// SealTSIG checks a TSIG secret as an operator hands it over (the base64
// secret of an HMAC-SHA256 key, or a whole BIND key file as tsig-keygen
// writes it) and seals it under the master key for domain
// (store.Domain.TSIGSealed). The error never holds the secret.
func (s *Service) SealTSIG(domain string, raw []byte) (string, error) {
	secret := strings.TrimSpace(string(raw))
	if m := secretInKeyFile.FindStringSubmatch(secret); m != nil {
		secret = m[1]
	}
	if b, err := base64.StdEncoding.DecodeString(secret); err != nil || len(b) < 16 {
		return "", store.Invalid("tsig_secret", "not a TSIG secret: want the base64 secret of an HMAC-SHA256 key (at least 16 bytes) or a BIND key file")
	}
	sealed, err := s.o.Master.Seal([]byte(secret), store.TSIGAssociatedData(domain))
	if err != nil {
		return "", err
	}
	return string(sealed), nil
}

// TSIGSecret opens a domain's sealed TSIG secret (base64), for the DNS
// UPDATE client only: it never goes into a log, an answer or an error.
func (s *Service) TSIGSecret(d store.Domain) (string, error) {
	if d.TSIGSealed == "" {
		return "", store.Explain(store.ErrNotFound, "Domain %s has no TSIG secret.", d.Name)
	}
	b, err := s.o.Master.Open([]byte(d.TSIGSealed), store.TSIGAssociatedData(d.Name))
	if err != nil {
		return "", fmt.Errorf("lifecycle: TSIG secret of %s does not open: %w", d.Name, err)
	}
	return string(b), nil
}
