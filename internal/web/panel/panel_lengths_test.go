package panel

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
)

// TestRecordLengthsTrue: what the key length chooser says of each RSA
// record (its length, and how many 255-character strings it takes) is
// what a generated key's record is, and the same as the record page says.
// 2048 does not fit in one string: no "fits every DNS host".
func TestRecordLengthsTrue(t *testing.T) {
	bits := []int{1024, 2048, 3072}
	if !testing.Short() {
		bits = append(bits, 4096)
	}
	for _, b := range bits {
		t.Run(fmt.Sprint(b), func(t *testing.T) {
			k, err := keys.Generate(rand.Reader, keys.Spec{Algorithm: keys.RSA, Bits: b})
			if err != nil {
				t.Fatal(err)
			}
			p, err := dkim.Publish("s", "example.com", k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Value) != rsaRecordChars[b] {
				t.Errorf("RSA %d: the record is %d characters, the chooser says %d", b, len(p.Value), rsaRecordChars[b])
			}
			note := recordNote(b)
			if !strings.Contains(note, fmt.Sprintf("%d characters", len(p.Value))) {
				t.Errorf("RSA %d: note %q does not give the length %d", b, note, len(p.Value))
			}
			if len(p.Strings) > 1 && !strings.Contains(note, fmt.Sprintf("%d strings", len(p.Strings))) {
				t.Errorf("RSA %d: note %q, but the record takes %d strings", b, note, len(p.Strings))
			}
			if len(p.Strings) > 1 && strings.Contains(note, "every DNS host") {
				t.Errorf("RSA %d: note %q claims every DNS host takes a record of %d strings", b, note, len(p.Strings))
			}
		})
	}
}
