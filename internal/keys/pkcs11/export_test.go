//go:build cgo

package pkcs11

import (
	"encoding/hex"

	p11 "github.com/miekg/pkcs11"
)

// PrivateAttributes are a private key's protection attributes, as the
// token reports them, and what it answered when asked for the key itself.
type PrivateAttributes struct {
	Sensitive, Extractable, NeverExtractable, Private, Sign, Decrypt bool
	Value                                                            []byte
	ValueErr                                                         error
}

// ReadPrivateAttributes reads the private half of o.
func ReadPrivateAttributes(t *Token, o Object) (PrivateAttributes, error) {
	var a PrivateAttributes
	c, err := t.get()
	if err != nil {
		return a, err
	}
	defer c.release()
	id, _ := hex.DecodeString(o.ID)
	err = c.withSession(func(s p11.SessionHandle) error {
		h, err := c.findOne(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
			p11.NewAttribute(p11.CKA_LABEL, o.Label), p11.NewAttribute(p11.CKA_ID, id),
		}, "private key", o)
		if err != nil {
			return err
		}
		attrs, err := c.p.GetAttributeValue(s, h, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
			p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil), p11.NewAttribute(p11.CKA_PRIVATE, nil),
			p11.NewAttribute(p11.CKA_SIGN, nil), p11.NewAttribute(p11.CKA_DECRYPT, nil),
			p11.NewAttribute(p11.CKA_KEY_TYPE, nil),
		})
		if err != nil {
			return err
		}
		b := func(i int) bool { return len(attrs[i].Value) == 1 && attrs[i].Value[0] != 0 }
		a.Sensitive, a.Extractable, a.NeverExtractable = b(0), b(1), b(2)
		a.Private, a.Sign, a.Decrypt = b(3), b(4), b(5)
		// The private value: CKA_PRIVATE_EXPONENT for RSA, CKA_VALUE for
		// Ed25519.
		secret := uint(p11.CKA_VALUE)
		if len(attrs[6].Value) > 0 && attrs[6].Value[0] == byte(p11.CKK_RSA) {
			secret = p11.CKA_PRIVATE_EXPONENT
		}
		v, err := c.p.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(secret, nil)})
		if err == nil && len(v) > 0 {
			a.Value = v[0].Value
		}
		a.ValueErr = err
		return nil
	})
	return a, err
}

// LoginAttempts counts the connection attempts made so far.
func LoginAttempts(t *Token) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempts
}
