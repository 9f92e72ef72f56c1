package web

import (
	"encoding/base64"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// TestSecretScanFinds shows that the scan every test runs at cleanup would
// catch a leak: it is fed answers that carry a sealed key, a private key
// and a password hash, and a log line with a token.
func TestSecretScanFinds(t *testing.T) {
	e := newEnv(t)
	ks, err := e.db.ListKeys(e.ctx, store.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := e.db.SealedKey(e.ctx, ks[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := e.keys.Signer(e.ctx, ks[0].Ref())
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := keys.MarshalPEM(signer)
	if err != nil {
		t.Fatal(err)
	}
	leaks := [][]byte{
		[]byte(`{"sealed":"` + base64.StdEncoding.EncodeToString(sealed) + `"}`),
		pemKey,
		[]byte(`{"hash":"$argon2id$v=19$m=19456,t=2,p=1$x$y"}`),
	}
	for _, l := range leaks {
		e.mu.Lock()
		saved := e.bodies
		e.bodies = [][]byte{l}
		e.mu.Unlock()
		if p := e.findSecrets(); len(p) == 0 {
			t.Errorf("the scan missed %.40q…", l)
		}
		e.mu.Lock()
		e.bodies = saved
		e.mu.Unlock()
	}
	_, _ = e.logs.Write([]byte(`{"msg":"oops","token":"` + e.tokens[roleAdmin] + `"}`))
	if p := e.findSecrets(); len(p) == 0 {
		t.Errorf("the scan missed a token in the log")
	}
	e.logs.b.Reset()

	// And the real answers of a busy session carry none.
	e.call(roleAdmin, "GET", "/api/v1/domains/a.example/keys", nil)
	e.call(roleAdmin, "GET", "/api/v1/domains/a.example/keys/a1", nil)
	e.call(roleAdmin, "GET", "/api/v1/domains/a.example/keys/a1/record", nil)
	e.call(roleAdmin, "POST", "/api/v1/domains/b.example/keys", `{"selector":"b2","algorithm":"ed25519"}`)
	e.call(roleAdmin, "GET", "/api/v1/accounts", nil)
	e.call(roleAdmin, "GET", "/api/v1/domains/a.example/users", nil)
	e.call(roleAdmin, "GET", "/api/v1/audit?limit=10000", nil)
	if p := e.findSecrets(); len(p) != 0 {
		t.Errorf("%v", p)
	}
}
