package relay_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/relay"
)

// A first start makes an ECDSA P-256 certificate for the host name, its key
// private to the owner; the next start reuses it; a new host name or an end
// in sight makes a new one.
func TestSelfSignedCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c1, err := relay.SelfSignedCertificate(certPath, keyPath, "mail.example.com", clock)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("mail.example.com"); err != nil {
		t.Error(err)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	for name, want := range map[string]os.FileMode{keyPath: 0o600, certPath: 0o600} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	serial := func(hostname string) string {
		t.Helper()
		c, err := relay.SelfSignedCertificate(certPath, keyPath, hostname, clock)
		if err != nil {
			t.Fatal(err)
		}
		l, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return l.SerialNumber.String()
	}
	first := leaf.SerialNumber.String()
	if got := serial("mail.example.com"); got != first {
		t.Error("certificate not reused on the next start")
	}
	renamed := serial("smtp.example.com")
	if renamed == first {
		t.Error("certificate reused for another host name")
	}
	now = now.Add(2*365*24*time.Hour - 10*24*time.Hour)
	if serial("smtp.example.com") == renamed {
		t.Error("certificate near its end reused")
	}
	if _, err := relay.SelfSignedCertificate(certPath, keyPath, "", clock); err == nil {
		t.Error("no error for an empty host name")
	}
}
