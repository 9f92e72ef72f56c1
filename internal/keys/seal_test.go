package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testMasterRaw is a fixed master key for tests: 32 bytes 0x00..0x1f.
var testMasterRaw = func() []byte {
	b := make([]byte, MasterKeySize)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func testMaster(t *testing.T) *MasterKey {
	t.Helper()
	m, err := ParseMasterKey([]byte(base64.StdEncoding.EncodeToString(testMasterRaw)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSealOpen(t *testing.T) {
	m := testMaster(t)
	other, err := NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("-----BEGIN PRIVATE KEY-----secret-----END PRIVATE KEY-----")
	ad := []byte("example.com\x00sel1")
	sealed, err := m.Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed blob contains the plaintext")
	}
	if sealed[0] != sealVersion {
		t.Fatalf("version byte %d, want %d", sealed[0], sealVersion)
	}
	again, err := m.Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same plaintext are equal: nonce is not random")
	}
	got, err := m.Open(sealed, ad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, want %q", got, plain)
	}

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		key    *MasterKey
		sealed []byte
		ad     []byte
	}{
		{"other row (selector)", m, sealed, []byte("example.com\x00sel2")},
		{"other row (domain)", m, sealed, []byte("example.org\x00sel1")},
		{"no associated data", m, sealed, nil},
		{"other master key", other, sealed, ad},
		{"version byte changed", m, flip(0), ad},
		{"nonce changed", m, flip(1), ad},
		{"ciphertext changed", m, flip(20), ad},
		{"tag changed", m, flip(len(sealed) - 1), ad},
		{"truncated", m, sealed[:len(sealed)-1], ad},
		{"too short", m, sealed[:10], ad},
		{"empty", m, nil, ad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.key.Open(tc.sealed, tc.ad)
			if !errors.Is(err, ErrSealed) {
				t.Fatalf("Open = %q, %v; want ErrSealed", got, err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q quotes the plaintext", err)
			}
		})
	}
}

func TestSealEveryByteAuthenticated(t *testing.T) {
	m := testMaster(t)
	sealed, err := m.Seal([]byte("k"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x80
		if _, err := m.Open(b, []byte("ad")); !errors.Is(err, ErrSealed) {
			t.Errorf("byte %d changed: Open err = %v, want ErrSealed", i, err)
		}
	}
}

func TestSealSigner(t *testing.T) {
	m := testMaster(t)
	k, err := Generate(nil, Spec{Algorithm: Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := m.SealSigner(k, []byte("row"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.OpenSigner(sealed, []byte("row"))
	if err != nil {
		t.Fatal(err)
	}
	if !k.(ed25519.PrivateKey).Equal(got) {
		t.Fatal("OpenSigner gave a different key")
	}
	if _, err := m.OpenSigner(sealed, []byte("other row")); !errors.Is(err, ErrSealed) {
		t.Fatalf("OpenSigner with other row: %v, want ErrSealed", err)
	}
}

func TestMasterKeyNeverPrints(t *testing.T) {
	m := testMaster(t)
	secrets := []string{
		base64.StdEncoding.EncodeToString(testMasterRaw),
		hex.EncodeToString(testMasterRaw),
		string(testMasterRaw[1:]),
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, m), fmt.Sprintf(verb, *m))
		for _, o := range outs[len(outs)-2:] {
			if o != redacted {
				t.Errorf("Sprintf(%s) = %q, want %q", verb, o, redacted)
			}
		}
	}
	outs = append(outs, fmt.Sprint(m), fmt.Sprintln(*m), fmt.Sprintf("%v", []*MasterKey{m}),
		fmt.Sprintf("%+v", struct{ K MasterKey }{*m}))

	j, err := json.Marshal(struct {
		P *MasterKey
		V MasterKey
		M map[string]any
	}{m, *m, map[string]any{"k": m}})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))

	var logBuf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logBuf, nil), slog.NewJSONHandler(&logBuf, nil)} {
		l := slog.New(h)
		l.Info("master", "key", m, "value", *m, slog.Any("any", m), slog.Group("g", "k", m))
	}
	outs = append(outs, logBuf.String())

	for _, o := range outs {
		if !strings.Contains(o, redacted) {
			t.Errorf("output %q does not show the redaction marker", o)
		}
		for _, s := range secrets {
			if strings.Contains(o, s) {
				t.Errorf("output %q contains key material", o)
			}
		}
	}
}

func TestParseMasterKey(t *testing.T) {
	valid := base64.StdEncoding.EncodeToString(testMasterRaw)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", valid, true},
		{"trailing newline", valid + "\n", true},
		{"surrounding white space", " \t" + valid + "\r\n", true},
		{"16 bytes (AES-128)", base64.StdEncoding.EncodeToString(testMasterRaw[:16]), false},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(testMasterRaw), 0)), false},
		{"raw 32 bytes, not base64", string(testMasterRaw), false},
		{"unpadded base64", base64.RawStdEncoding.EncodeToString(testMasterRaw), false},
		{"space inside", valid[:10] + " " + valid[10:], false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMasterKey([]byte(tc.in))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				// Same key as testMaster: what one seals the other opens.
				s, err := testMaster(t).Seal([]byte("x"), nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := m.Open(s, nil); err != nil {
					t.Fatalf("parsed key differs: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMasterKey) {
				t.Fatalf("err = %v, want ErrMasterKey", err)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tc.in)[:8]) {
				t.Fatalf("error %q quotes the input", err)
			}
		})
	}
}

func TestMasterKeyFromEnv(t *testing.T) {
	const name = "DKIMD_TEST_MASTER_KEY"
	t.Setenv(name, "")
	if _, err := MasterKeyFromEnv(name); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("empty: err = %v, want ErrNoMasterKey", err)
	}
	t.Setenv(name, "bm90IGEga2V5")
	_, err := MasterKeyFromEnv(name)
	if !errors.Is(err, ErrMasterKey) || !strings.Contains(err.Error(), name) {
		t.Fatalf("short: err = %v, want ErrMasterKey naming the variable", err)
	}
	if strings.Contains(err.Error(), "bm90IGEga2V5") {
		t.Fatalf("error %q quotes the value", err)
	}
	t.Setenv(name, base64.StdEncoding.EncodeToString(testMasterRaw)+"\n")
	m, err := MasterKeyFromEnv(name)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := testMaster(t).Seal([]byte("x"), nil)
	if _, err := m.Open(s, nil); err != nil {
		t.Fatalf("env key differs from the same text parsed: %v", err)
	}
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	m1, created, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false on first call")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	if fi.Size() != 45 {
		t.Fatalf("file is %d bytes, want 44 base64 and a newline", fi.Size())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key (temporary file left behind?)", len(entries))
	}

	m2, created, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Fatal("created = true on second call")
	}
	s, err := m1.Seal([]byte("x"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Open(s, []byte("ad")); err != nil {
		t.Fatalf("reloaded key differs: %v", err)
	}
}

func TestLoadOrCreateMasterKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		sealed  [][]byte
	)
	for range n {
		wg.Go(func() {
			m, c, err := LoadOrCreateMasterKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			s, err := m.Seal([]byte("x"), nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if c {
				created++
			}
			sealed = append(sealed, s)
		})
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d callers created the key, want exactly 1", created)
	}
	m, err := LoadMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sealed {
		if _, err := m.Open(s, nil); err != nil {
			t.Errorf("caller %d used another key than the file holds: %v", i, err)
		}
	}
}

func TestLoadMasterKeyFileRefuses(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(testMasterRaw) + "\n"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		dir     bool
		want    error
		mention string
	}{
		{"valid", good, 0o600, false, nil, ""},
		{"read-only owner", good, 0o400, false, nil, ""},
		{"group readable", good, 0o640, false, ErrMasterKey, "chmod 600"},
		{"world readable", good, 0o604, false, ErrMasterKey, "chmod 600"},
		{"group writable", good, 0o620, false, ErrMasterKey, "chmod 600"},
		{"too short", base64.StdEncoding.EncodeToString(testMasterRaw[:31]) + "\n", 0o600, false, ErrMasterKey, "31 bytes"},
		{"too long", strings.Repeat("A", 4000), 0o600, false, ErrMasterKey, "4000 bytes"},
		{"not base64", "this is not a key at all, it is prose!!!!!!\n", 0o600, false, ErrMasterKey, "base64"},
		{"empty", "", 0o600, false, ErrMasterKey, "0 bytes"},
		{"directory", "", 0o700, true, ErrMasterKey, "not a regular file"},
		{"missing", "", 0, false, os.ErrNotExist, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			switch {
			case tc.dir:
				if err := os.Mkdir(path, tc.mode); err != nil {
					t.Fatal(err)
				}
			case tc.mode != 0:
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadMasterKeyFile(path)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("err = %q, want it to mention %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(good)) {
				t.Fatalf("error %q contains the key", err)
			}
			// LoadOrCreate must refuse too, not replace the file.
			if tc.want == ErrMasterKey {
				if _, _, err := LoadOrCreateMasterKey(path); !errors.Is(err, ErrMasterKey) {
					t.Fatalf("LoadOrCreate err = %v, want ErrMasterKey", err)
				}
			}
		})
	}
}
