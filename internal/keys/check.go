package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// checkVersion is the first byte of a master key check value; a new way of
// deriving one gets a new version so that stored values keep comparing.
const checkVersion byte = 1

// checkLabel is what version 1 check values are the HMAC of.
const checkLabel = "dkimd master key check v1"

// checkSize is the length of a version 1 check value.
const checkSize = 1 + sha256.Size

// ErrCheckValue means a stored master key check value is not one this
// dkimd can compare: an unknown version or a damaged value.
var ErrCheckValue = errors.New("keys: unusable master key check value")

// checkValue derives the check value of raw key bytes: a version byte and
// HMAC-SHA256 of a fixed label under the key. HMAC is a pseudorandom
// function, so the value says nothing about the key beyond "this one", and
// it is another function of the key than AES-GCM, so it helps no attack on
// what the key seals.
func checkValue(raw []byte) [checkSize]byte {
	var out [checkSize]byte
	out[0] = checkVersion
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte(checkLabel))
	mac.Sum(out[1:1])
	return out
}

// CheckValue gives the master key's check value. It is stored with the data
// the key seals, so that starting with a missing or another installation's
// master key is refused at once rather than found later when nothing opens.
// It is not secret, and the key cannot be derived from it.
func (m *MasterKey) CheckValue() []byte {
	if m == nil {
		return nil
	}
	return append([]byte(nil), m.check[:]...)
}

// MatchesCheckValue tells whether v is this master key's check value,
// comparing in constant time. A value of an unknown version or length gives
// an error wrapping ErrCheckValue.
func (m *MasterKey) MatchesCheckValue(v []byte) (bool, error) {
	if m == nil || m.aead == nil {
		return false, fmt.Errorf("%w: nil master key", ErrMasterKey)
	}
	if len(v) == 0 || v[0] != checkVersion {
		return false, fmt.Errorf("%w: unknown version", ErrCheckValue)
	}
	if len(v) != checkSize {
		return false, fmt.Errorf("%w: %d bytes, want %d", ErrCheckValue, len(v), checkSize)
	}
	return hmac.Equal(v, m.check[:]), nil
}
