//go:build !(cgo && linux)

package keys

import (
	"crypto"
	"crypto/rsa"
	"fmt"
)

// LoadOpenSSL fails: this dkimd was built without cgo (or not for Linux),
// so RSA signs with Go's crypto/rsa.
func LoadOpenSSL() (*OpenSSL, error) {
	return nil, fmt.Errorf("%w: built without cgo", ErrNoOpenSSL)
}

func (o *OpenSSL) rsaSigner(*rsa.PrivateKey) (crypto.Signer, error) {
	return nil, ErrNoOpenSSL
}
