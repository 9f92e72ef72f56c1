//go:build cgo

package milter_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/keys/pkcs11/pkcs11test"
	"github.com/dkimd/dkimd/internal/milter"
	"github.com/dkimd/dkimd/internal/store"
)

// A key in a PKCS#11 token signs inside the MTA like a sealed one; when
// the token goes away, the MTA is told to try later (451 4.3.0, as the
// relay answers), whether the key was opened before (the signature fails)
// or is opened now (the key does not open), never given the message
// unsigned, and the token's error stays in the log (issue 16).
func TestTokenKey(t *testing.T) {
	ctx := context.Background()
	cfg := pkcs11test.Token(t)
	tok, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	var src *keys.Source
	f := newFixture(t, func(o *milter.Options) {
		var err error
		if src, err = keys.NewSource(keys.SourceOptions{Sealed: nopSealed{}, Master: mustMaster(t), Token: tok}); err != nil {
			t.Fatal(err)
		}
		o.Keys = src
	})
	if _, err := f.db.AddDomain(ctx, store.Domain{Name: "hsm.example"}); err != nil {
		t.Fatal(err)
	}
	o, pub, err := tok.Generate(keys.Spec{Algorithm: keys.Ed25519}, keys.TokenObjectLabel("hsm.example", "h1"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := f.db.CreateKey(ctx, store.NewKey{Domain: "hsm.example", Selector: "h1", Algorithm: keys.Ed25519,
		PublicKey: pub.(ed25519.PublicKey), Location: store.KeyLocation{Backend: store.BackendPKCS11, Token: tok.Label(), Label: o.Label, ObjectID: o.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if k, err = f.db.SetKeyState(ctx, k.ID, store.KeyActive); err != nil {
		t.Fatal(err)
	}
	f.keys[k.RecordName()] = k
	pw, err := auth.HashPasswordParams("unused-here", auth.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.AddUser(ctx, store.OutgoingUser{Name: "hsm", Domain: "hsm.example", Auth: store.AuthPassword,
		PasswordHash: pw, Enabled: true, Selector: "h1"}); err != nil {
		t.Fatal(err)
	}
	msg := withAuth(plain("a@hsm.example"), "hsm")

	r := f.dial().send(msg)
	if got := f.verify(r.out); len(got) != 1 || got[0] != "hsm.example/h1" {
		t.Fatalf("signatures %v, want one by the token's key", got)
	}

	pkcs11test.Remove(t, cfg.Token)
	for _, step := range []string{"key opened before", "key opened now"} {
		if step == "key opened now" {
			src.Drop(k.ID)
		}
		r := f.dial().send(msg)
		if r.signatures() != 0 || len(r.mods) != 0 {
			t.Fatalf("%s: signed anyway: %+v", step, r)
		}
		if r.action.Type != gomilter.ActionRejectWithCode || r.action.SMTPCode != 451 || !strings.HasPrefix(r.action.SMTPReply, "451 4.3.0") {
			t.Fatalf("%s: action %+v, want 451 4.3.0", step, r.action)
		}
		if strings.Contains(r.action.SMTPReply, cfg.Token) || strings.Contains(r.action.SMTPReply, "CKR_") {
			t.Errorf("%s: reply %q carries the token's details", step, r.action.SMTPReply)
		}
	}
	if logs := f.logs.String(); strings.Count(logs, "milter_signing_failed") != 2 || !strings.Contains(logs, cfg.Token) {
		t.Errorf("the log does not say the token failed, twice:\n%s", logs)
	}
	var signed, tempfail int64
	for mk, v := range f.metrics.Snapshot() {
		switch mk.Result {
		case milter.ResultSigned:
			signed += v
		case milter.ResultTempfail:
			tempfail += v
		}
	}
	if signed != 1 || tempfail != 2 {
		t.Errorf("metrics %v, want one signed and two tempfail", f.metrics.Snapshot())
	}
}

// nopSealed has no sealed keys: the fixture's token keys need none.
type nopSealed struct{}

func (nopSealed) SealedKey(context.Context, int64) ([]byte, error) { return nil, store.ErrNotFound }

func mustMaster(t *testing.T) *keys.MasterKey {
	t.Helper()
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return mk
}
