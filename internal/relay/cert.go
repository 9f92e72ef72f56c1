package relay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"

	"github.com/dkimd/dkimd/internal/datadir"
)

// selfSignedLifetime is how long a made certificate is valid. Clients of a
// self-signed submission server either skip verification or pin the
// certificate, so a long life spares them a change; it is remade when it
// is within a month of its end.
const selfSignedLifetime = 2 * 365 * 24 * time.Hour

// SelfSignedCertificate gives a certificate for hostname kept in certPath
// and its key in keyPath (datadir.Layout's RelayCert and RelayKey): the
// one made before if it is still good for hostname for more than 30 days,
// else a new one (ECDSA P-256, subject alternative name hostname, valid two
// years), written with its key in mode 0600. It is for a first start with
// no certificate configured, so that submission is encrypted from the
// start; clients must be told to trust it or given a real certificate.
// now is the clock; nil means time.Now.
func SelfSignedCertificate(certPath, keyPath, hostname string, now func() time.Time) (tls.Certificate, error) {
	if now == nil {
		now = time.Now
	}
	if hostname == "" {
		return tls.Certificate{}, errors.New("relay: self-signed certificate needs a host name")
	}
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && stillGood(c, hostname, now()) {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: certificate serial: %w", err)
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname},
		NotBefore:             t.Add(-time.Hour),
		NotAfter:              t.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(hostname); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{hostname}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: certificate key: %w", err)
	}
	// The key first: a certificate without its key would be loaded and
	// fail; a key without its certificate is simply made again.
	if err := datadir.WriteFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: %w", err)
	}
	if err := datadir.WriteFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: %w", err)
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

func stillGood(c tls.Certificate, hostname string, now time.Time) bool {
	if len(c.Certificate) == 0 {
		return false
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil || now.Add(30*24*time.Hour).After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return false
	}
	if ip := net.ParseIP(hostname); ip != nil {
		return slices.ContainsFunc(leaf.IPAddresses, ip.Equal)
	}
	return leaf.VerifyHostname(hostname) == nil
}
