//go:build cgo

package pkcs11

import (
	"crypto"
	"crypto/ed25519"
	"encoding/asn1"
	"encoding/hex"
	"fmt"

	p11 "github.com/miekg/pkcs11"
)

// PKCS#11 3.0 names for Ed25519, which github.com/miekg/pkcs11 v1.1.2 does
// not define.
const (
	ckkECEdwards           = 0x00000040 // CKK_EC_EDWARDS
	ckmECEdwardsKeyPairGen = 0x00001055 // CKM_EC_EDWARDS_KEY_PAIR_GEN
	ckmEdDSA               = 0x00001057 // CKM_EDDSA
)

// ed25519Params is CKA_EC_PARAMS for Ed25519: the DER of the curve's
// object identifier 1.3.101.112 (RFC 8410 §3), which SoftHSM 2.6 and the
// PKCS#11 3.0 profile accept.
var ed25519Params = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}

// generateEd25519 makes an Ed25519 key pair (CKM_EC_EDWARDS_KEY_PAIR_GEN).
func (c *conn) generateEd25519(label string, id []byte) (crypto.PublicKey, error) {
	var pub ed25519.PublicKey
	err := c.withSession(func(s p11.SessionHandle) error {
		pubTmpl := []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_VERIFY, true),
			p11.NewAttribute(p11.CKA_EC_PARAMS, ed25519Params),
			p11.NewAttribute(p11.CKA_LABEL, label),
			p11.NewAttribute(p11.CKA_ID, id),
		}
		privTmpl := []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			p11.NewAttribute(p11.CKA_SIGN, true),
			p11.NewAttribute(p11.CKA_DECRYPT, false),
			p11.NewAttribute(p11.CKA_DERIVE, false),
			p11.NewAttribute(p11.CKA_UNWRAP, false),
			p11.NewAttribute(p11.CKA_LABEL, label),
			p11.NewAttribute(p11.CKA_ID, id),
		}
		pubH, privH, err := c.p.GenerateKeyPair(s, []*p11.Mechanism{p11.NewMechanism(ckmECEdwardsKeyPairGen, nil)}, pubTmpl, privTmpl)
		if err != nil {
			return err
		}
		if pub, err = c.ecPoint(s, pubH); err != nil {
			// Leave no half-usable pair behind.
			_ = c.p.DestroyObject(s, privH)
			_ = c.p.DestroyObject(s, pubH)
			return err
		}
		c.mu.Lock()
		c.ed[Object{Label: label, ID: hex.EncodeToString(id)}] = privH
		c.mu.Unlock()
		return nil
	})
	return pub, err
}

// ecPoint reads an Ed25519 public key object's key: CKA_EC_POINT holds the
// 32 bytes, as a DER OCTET STRING (SoftHSM, PKCS#11 3.0) or bare.
func (c *conn) ecPoint(s p11.SessionHandle, h p11.ObjectHandle) (ed25519.PublicKey, error) {
	attrs, err := c.p.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, err
	}
	v := attrs[0].Value
	if len(v) == ed25519.PublicKeySize {
		return ed25519.PublicKey(v), nil
	}
	var raw []byte
	if rest, err := asn1.Unmarshal(v, &raw); err != nil || len(rest) > 0 || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: CKA_EC_POINT of %d bytes is not an Ed25519 public key", ErrKeyNotFound, len(v))
	}
	return ed25519.PublicKey(raw), nil
}

// edTemplate selects one half of the Ed25519 pair o.
func edTemplate(class uint, o Object) ([]*p11.Attribute, error) {
	id, err := hex.DecodeString(o.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: bad object ID %q", ErrKeyNotFound, o.ID)
	}
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, class),
		p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards),
		p11.NewAttribute(p11.CKA_LABEL, o.Label),
		p11.NewAttribute(p11.CKA_ID, id),
	}, nil
}

// findOne finds the one object tmpl selects.
func (c *conn) findOne(s p11.SessionHandle, tmpl []*p11.Attribute, what string, o Object) (p11.ObjectHandle, error) {
	hs, err := c.find(s, tmpl)
	if err != nil {
		return 0, err
	}
	if len(hs) != 1 {
		return 0, fmt.Errorf("%w: %d %s objects labelled %q with ID %s", ErrKeyNotFound, len(hs), what, o.Label, o.ID)
	}
	return hs[0], nil
}

// ed25519Public reads the public key of the pair o, and makes sure its
// private half is there.
func (c *conn) ed25519Public(o Object) (ed25519.PublicKey, error) {
	var pub ed25519.PublicKey
	err := c.withSession(func(s p11.SessionHandle) error {
		tmpl, err := edTemplate(p11.CKO_PUBLIC_KEY, o)
		if err != nil {
			return err
		}
		h, err := c.findOne(s, tmpl, "Ed25519 public key", o)
		if err != nil {
			return err
		}
		if pub, err = c.ecPoint(s, h); err != nil {
			return err
		}
		_, err = c.ed25519Private(s, o)
		return err
	})
	return pub, err
}

// ed25519Private finds the private half of the pair o, once per connection.
func (c *conn) ed25519Private(s p11.SessionHandle, o Object) (p11.ObjectHandle, error) {
	c.mu.Lock()
	h, ok := c.ed[o]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	tmpl, err := edTemplate(p11.CKO_PRIVATE_KEY, o)
	if err != nil {
		return 0, err
	}
	if h, err = c.findOne(s, tmpl, "Ed25519 private key", o); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.ed[o] = h
	c.mu.Unlock()
	return h, nil
}

// signEd25519 signs msg with CKM_EDDSA and no parameters: pure Ed25519
// (RFC 8032 §5.1), the same bytes ed25519.Sign gives for the same key.
func (c *conn) signEd25519(o Object, msg []byte) ([]byte, error) {
	var sig []byte
	err := c.withSession(func(s p11.SessionHandle) error {
		h, err := c.ed25519Private(s, o)
		if err != nil {
			return err
		}
		if err := c.p.SignInit(s, []*p11.Mechanism{p11.NewMechanism(ckmEdDSA, nil)}, h); err != nil {
			return err
		}
		sig, err = c.p.Sign(s, msg)
		return err
	})
	if err == nil && len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("token gave a %d-byte Ed25519 signature", len(sig))
	}
	return sig, err
}
