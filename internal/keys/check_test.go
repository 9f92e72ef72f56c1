package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// TestCheckValue: the check value is version 1 followed by
// HMAC-SHA256(key, "dkimd master key check v1"), the same for every load of
// one key, another for another key, and never the key itself.
func TestCheckValue(t *testing.T) {
	m := testMaster(t)
	// Computed apart from this code: python3 -c 'import hmac, hashlib;
	// print(hmac.new(bytes(range(32)), b"dkimd master key check v1",
	// hashlib.sha256).hexdigest())'.
	const want = "01" + "1a9901add0fa1246efac0aeaaf1a84b4b5a307c339fea8140f06656606f40f05"
	v := m.CheckValue()
	if got := hex.EncodeToString(v); got != want {
		t.Fatalf("CheckValue = %s, want %s", got, want)
	}
	if bytes.Contains(v, testMasterRaw[:8]) {
		t.Error("check value holds key bytes")
	}
	if ok, err := testMaster(t).MatchesCheckValue(v); !ok || err != nil {
		t.Errorf("the same key loaded again: match %t, %v", ok, err)
	}
	v[0] = 'x' // CheckValue gives a copy: changing it changes nothing
	if ok, _ := m.MatchesCheckValue(m.CheckValue()); !ok {
		t.Error("CheckValue shares its bytes with the key")
	}

	other, err := NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := other.MatchesCheckValue(m.CheckValue()); ok || err != nil {
		t.Errorf("another key: match %t, %v; want false, nil", ok, err)
	}
	for name, bad := range map[string][]byte{
		"empty":           nil,
		"unknown version": append([]byte{2}, m.CheckValue()[1:]...),
		"short":           m.CheckValue()[:20],
		"long":            append(m.CheckValue(), 0),
	} {
		if ok, err := m.MatchesCheckValue(bad); ok || !errors.Is(err, ErrCheckValue) {
			t.Errorf("%s: match %t, %v; want ErrCheckValue", name, ok, err)
		}
	}
	var nilKey *MasterKey
	if ok, err := nilKey.MatchesCheckValue(m.CheckValue()); ok || !errors.Is(err, ErrMasterKey) {
		t.Errorf("nil key: %t %v", ok, err)
	}
}
