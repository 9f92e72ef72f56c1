package dkim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

type recordCase struct {
	name string
	txt  string
	err  error // nil: the record parses
	// check, when set, looks at the parsed record (also on error, when
	// ParseRecord returns one).
	check func(t *testing.T, r *Record)
}

// recordCases start from a valid RSA record and change one thing per row.
func recordCases(t testing.TB) []recordCase {
	keys := loadFixedKeys(t)
	rsaPub := &keys.rsa2048.PublicKey
	spki := record(t, rsaPub)[len("v=DKIM1; k=rsa; p="):]
	pkcs1 := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(rsaPub))
	edPub := keys.ed.Public().(ed25519.PublicKey)
	ed := base64.StdEncoding.EncodeToString(edPub)
	edSPKI, err := x509.MarshalPKIXPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	valid := "v=DKIM1; k=rsa; p=" + spki
	isRSA := func(t *testing.T, r *Record) {
		if pub, ok := r.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(rsaPub) {
			t.Errorf("key %T, want the RSA test key", r.PublicKey)
		}
	}
	isEd := func(t *testing.T, r *Record) {
		if pub, ok := r.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(edPub) {
			t.Errorf("key %T, want the Ed25519 test key", r.PublicKey)
		}
	}
	return []recordCase{
		{"valid RSA SubjectPublicKeyInfo", valid, nil, isRSA},
		{"RSA PKCS#1 RSAPublicKey, as receivers accept", "v=DKIM1; k=rsa; p=" + pkcs1, nil, isRSA},
		{"RFC 6376 §3.6.1: k= defaults to rsa", "v=DKIM1; p=" + spki, nil, isRSA},
		{"RFC 6376 §3.6.1: v= is optional", "k=rsa; p=" + spki, nil, isRSA},
		{"RFC 6376 §3.2: trailing semicolon", valid + ";", nil, isRSA},
		{"RFC 6376 §3.2: white space around tags", " v = DKIM1 ;\tk= rsa ; p =" + spki + " ", nil, isRSA},
		{"RFC 6376 §3.6.1: FWS inside p=", "v=DKIM1; k=rsa; p=" + spki[:40] + " " + spki[40:100] + "\t" + spki[100:200] + "\r\n " + spki[200:], nil, isRSA},
		{"RFC 6376 §3.6.1: unknown tag ignored", valid + "; z=whatever", nil, isRSA},
		{"RFC 6376 §3.6.1: n= notes", valid + "; n=hello there", nil, func(t *testing.T, r *Record) {
			if r.Notes != "hello there" {
				t.Errorf("Notes %q", r.Notes)
			}
		}},
		{"RFC 6376 §3.6.1: h=sha256", "v=DKIM1; h=sha256; k=rsa; p=" + spki, nil, func(t *testing.T, r *Record) {
			if !r.AllowsHash("sha256") || r.AllowsHash("sha1") {
				t.Errorf("h=sha256: AllowsHash sha256 %v, sha1 %v", r.AllowsHash("sha256"), r.AllowsHash("sha1"))
			}
		}},
		{"RFC 6376 §3.6.1: t=y:s flags", valid + "; t=y : s", nil, func(t *testing.T, r *Record) {
			if !r.Testing() || !r.Strict() {
				t.Errorf("t=y:s: Testing %v, Strict %v", r.Testing(), r.Strict())
			}
		}},
		{"RFC 6376 §3.6.1: no t= flags", valid, nil, func(t *testing.T, r *Record) {
			if r.Testing() || r.Strict() || !r.AllowsHash("sha256") {
				t.Errorf("Testing %v, Strict %v, AllowsHash(sha256) %v", r.Testing(), r.Strict(), r.AllowsHash("sha256"))
			}
		}},
		{"RFC 8463 §4: Ed25519, 32 bytes", "v=DKIM1; k=ed25519; p=" + ed, nil, isEd},
		{"RFC 8463 §4: Ed25519, 31 bytes", "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub[:31]), ErrKeyDecode, nil},
		{"RFC 8463 §4: Ed25519, 33 bytes", "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(append(edPub[:32:32], 0)), ErrKeyDecode, nil},
		{"RFC 8463 §4: Ed25519 as SubjectPublicKeyInfo", "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edSPKI), ErrKeyDecode, nil},
		{"k=ed25519 with an RSA key", "v=DKIM1; k=ed25519; p=" + spki, ErrKeyDecode, nil},
		{"k=rsa with a raw Ed25519 key", "v=DKIM1; k=rsa; p=" + ed, ErrKeyDecode, nil},
		{"k=rsa with an Ed25519 SubjectPublicKeyInfo", "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(edSPKI), ErrKeyType, nil},
		{"RFC 6376 §3.6.2.2: value cut at 255 characters", valid[:255], ErrKeyDecode, nil},
		{"RFC 6376 §3.6.2.2: value cut at a base64 boundary", valid[:len("v=DKIM1; k=rsa; p=")+200], ErrKeyDecode, nil},
		{"p= not base64", "v=DKIM1; k=rsa; p=not*base64", ErrKeyDecode, nil},
		{"stray quotes around the value", `"` + valid + `"`, ErrRecordSyntax, nil},
		{"stray quotes inside p= (strings joined badly)", "v=DKIM1; k=rsa; p=" + spki[:200] + `" "` + spki[200:], ErrKeyDecode, nil},
		{"RFC 6376 §3.6.1: p= missing", "v=DKIM1; k=rsa", ErrRecordNoKey, nil},
		{"RFC 6376 §3.6.1: v=DKIM2", "v=DKIM2; k=rsa; p=" + spki, ErrRecordVersion, nil},
		{"RFC 6376 §3.6.1: v= not first", "k=rsa; v=DKIM1; p=" + spki, ErrRecordVersion, nil},
		{"RFC 6376 §3.6.1: k=dsa", "v=DKIM1; k=dsa; p=" + spki, ErrKeyType, nil},
		{"RFC 6376 §3.6.1: s=*", valid + "; s=*", nil, isRSA},
		{"RFC 6376 §3.6.1: s=email", valid + "; s=email", nil, isRSA},
		{"RFC 6376 §3.6.1: s=other:email", valid + "; s=other:email", nil, isRSA},
		{"RFC 6376 §3.6.1: s=other", valid + "; s=other", ErrKeyService, nil},
		{"RFC 6376 §3.6.1: empty p= (revoked)", "v=DKIM1; k=rsa; p=", ErrKeyRevoked, func(t *testing.T, r *Record) {
			if r == nil || r.PublicKey != nil {
				t.Errorf("revoked record %+v, want a record without a key", r)
			}
		}},
		{"RFC 6376 §3.6.1: p= of white space only (revoked)", "v=DKIM1; k=rsa; p= \t", ErrKeyRevoked, nil},
		{"RFC 8301 §3.2: 512-bit RSA key", "v=DKIM1; k=rsa; p=" + keys.rsa512, ErrKeyTooShort, nil},
		{"RFC 8301 §3.2: 768-bit RSA key", "v=DKIM1; k=rsa; p=" + keys.rsa768, ErrKeyTooShort, nil},
		{"RFC 8301 §3.2: 1024-bit RSA key", record(t, keys.rsa1024.Public()), nil, nil},
		{"RFC 6376 §3.2: empty record", "", ErrRecordSyntax, nil},
		{"RFC 6376 §3.2: duplicate tag", valid + "; p=" + spki, ErrRecordSyntax, nil},
		{"RFC 6376 §3.2: tag without =", valid + "; oops", ErrRecordSyntax, nil},
		{"RFC 6376 §3.2: 8-bit byte in a value", valid + "; n=caf\xe9", ErrRecordSyntax, nil},
	}
}

func TestParseRecord(t *testing.T) {
	for _, tc := range recordCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRecord(tc.txt)
			if tc.err == nil && err != nil {
				t.Fatalf("ParseRecord: %v", err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("ParseRecord error %v, want %v", err, tc.err)
			}
			if err == nil && r.PublicKey == nil {
				t.Errorf("no error and no key")
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestRecordRoundTrip: RecordValue gives a record that ParseRecord reads
// back to the same key, also when carried as several TXT strings.
func TestRecordRoundTrip(t *testing.T) {
	keys := loadFixedKeys(t)
	for _, tc := range []struct {
		name string
		pub  crypto.PublicKey
		kind string
	}{
		{"RSA 1024", keys.rsa1024.Public(), "rsa"},
		{"RSA 2048", keys.rsa2048.Public(), "rsa"},
		{"RSA 4096", keys.rsa4096.Public(), "rsa"},
		{"Ed25519", keys.ed.Public(), "ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := RecordValue(tc.pub)
			if err != nil {
				t.Fatal(err)
			}
			if want := "v=DKIM1; k=" + tc.kind + "; p="; !strings.HasPrefix(v, want) {
				t.Errorf("record %q does not start with %q", v, want)
			}
			r, err := ParseRecord(strings.Join(SplitTXT(v), ""))
			if err != nil {
				t.Fatal(err)
			}
			if r.KeyType != tc.kind {
				t.Errorf("k=%s, want %s", r.KeyType, tc.kind)
			}
			if !r.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
				t.Errorf("key does not come back")
			}
		})
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RecordValue(ec.Public()); !errors.Is(err, ErrKeyType) {
		t.Errorf("RecordValue(ECDSA) error %v, want %v", err, ErrKeyType)
	}
	if got, want := RevokedRecordValue("ed25519"), "v=DKIM1; k=ed25519; p="; got != want {
		t.Errorf("RevokedRecordValue = %q, want %q", got, want)
	}
	if _, err := ParseRecord(RevokedRecordValue("rsa")); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("ParseRecord(RevokedRecordValue) error %v, want %v", err, ErrKeyRevoked)
	}
}

// TestSplitTXT: RFC 1035 §3.3 character-strings hold at most 255 bytes, and
// receivers join them without separators (RFC 6376 §3.6.2.2).
func TestSplitTXT(t *testing.T) {
	keys := loadFixedKeys(t)
	values := map[string]string{"RSA 4096 record": record(t, keys.rsa4096.Public())}
	for _, n := range []int{0, 1, 254, 255, 256, 509, 510, 511, 765, 766} {
		var b strings.Builder
		for i := range n {
			b.WriteByte('a' + byte(i%26))
		}
		values["length "+itoa(n)] = b.String()
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			parts := SplitTXT(v)
			if got := strings.Join(parts, ""); got != v {
				t.Errorf("joined parts differ from the value")
			}
			if want := max(1, (len(v)+MaxTXTString-1)/MaxTXTString); len(parts) != want {
				t.Errorf("%d parts, want %d", len(parts), want)
			}
			for i, p := range parts {
				if len(p) > MaxTXTString {
					t.Errorf("part %d has %d bytes", i, len(p))
				}
				if len(p) == 0 && len(v) > 0 {
					t.Errorf("part %d is empty", i)
				}
				if i < len(parts)-1 && len(p) != MaxTXTString {
					t.Errorf("part %d of %d has %d bytes, want %d", i, len(parts), len(p), MaxTXTString)
				}
			}
		})
	}
}

// TestZoneLine checks quoting and splitting of zone-file lines; the key
// records themselves are in the golden files (TestGoldenRecords).
func TestZoneLine(t *testing.T) {
	long := strings.Repeat("x", 254) + `"` + strings.Repeat("y", 10)
	for _, tc := range []struct{ name, zname, value, want string }{
		{"valid", "s._domainkey.example.com", "v=DKIM1; p=", `s._domainkey.example.com. IN TXT ( "v=DKIM1; p=" )`},
		{"name with trailing dot", "s._domainkey.example.com.", "v=DKIM1; p=", `s._domainkey.example.com. IN TXT ( "v=DKIM1; p=" )`},
		{"RFC 1035 §5.1: quote and backslash escaped", "n.example", `n=say "hi" \o/`, `n.example. IN TXT ( "n=say \"hi\" \\o/" )`},
		{"RFC 1035 §3.3: split counts unescaped bytes", "n.example", long,
			`n.example. IN TXT ( "` + strings.Repeat("x", 254) + `\"" "` + strings.Repeat("y", 10) + `" )`},
		{"empty value", "n.example", "", `n.example. IN TXT ( "" )`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ZoneLine(tc.zname, tc.value); got != tc.want {
				t.Errorf("ZoneLine = %q\nwant      %q", got, tc.want)
			}
		})
	}
}

func TestRecordName(t *testing.T) {
	for _, tc := range []struct{ sel, domain, want string }{
		{"s1", "example.com", "s1._domainkey.example.com"},
		{"s1", "example.com.", "s1._domainkey.example.com"},
		{"2026.mail", "sub.example.com", "2026.mail._domainkey.sub.example.com"},
	} {
		if got := RecordName(tc.sel, tc.domain); got != tc.want {
			t.Errorf("RecordName(%q, %q) = %q, want %q", tc.sel, tc.domain, got, tc.want)
		}
	}
}
