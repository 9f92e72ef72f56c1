package admin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// sessions gives the IDs of an account's live panel sessions.
func sessions(t *testing.T, svc *testService, name string) []int64 {
	t.Helper()
	ts, err := svc.Store.ListTokens(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, x := range ts {
		if x.Kind == store.TokenSession {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

// A password change ends every session of the account but the one asking;
// an account change by an admin ends all of the account's; API tokens stay.
func TestAccountChangesEndSessions(t *testing.T) {
	ctx := context.Background()
	svc := newService(t)
	const pw = "a long enough password"
	for _, r := range []admin.NewAccountRequest{
		{Name: "root", Role: store.RoleAdmin, Password: pw},
		{Name: "ann", Role: store.RoleDomain, Password: pw},
	} {
		if _, err := svc.AddAccount(ctx, admin.CLI(), r); err != nil {
			t.Fatal(err)
		}
	}
	login := func(name string) (store.Account, store.Token) {
		tok, _, err := svc.Login(ctx, name, pw, "192.0.2.1", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		acc, info, err := svc.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		return acc, info
	}
	ann, mine := login("ann")
	login("ann")
	login("ann")
	if _, _, err := svc.NewToken(ctx, admin.CLI(), "ann", "script", 0); err != nil {
		t.Fatal(err)
	}
	self := admin.Actor{Name: "ann", Account: &ann, Session: mine.ID}
	if err := svc.SetAccountPassword(ctx, self, "ann", pw+" too"); err != nil {
		t.Fatal(err)
	}
	if got := sessions(t, svc, "ann"); len(got) != 1 || got[0] != mine.ID {
		t.Errorf("sessions after ann's own change %v, want only %d", got, mine.ID)
	}

	login("root")
	rootAcc, rootTok := login("root")
	root := admin.Actor{Name: "root", Account: &rootAcc, Session: rootTok.ID}
	doms := []string{}
	if _, err := svc.UpdateAccount(ctx, root, "ann", admin.AccountUpdate{Domains: &doms}); err != nil {
		t.Fatal(err)
	}
	if got := sessions(t, svc, "ann"); len(got) != 0 {
		t.Errorf("ann's sessions after an admin's change %v, want none", got)
	}
	if got := sessions(t, svc, "root"); len(got) != 2 {
		t.Errorf("root's sessions %v: another account's change ended them", got)
	}
	ts, _ := svc.Store.ListTokens(ctx, "ann")
	if len(ts) != 1 || ts[0].Kind != store.TokenAPI {
		t.Errorf("ann's tokens %+v, want the API token kept", ts)
	}

	// Domain admins change no account, not even their own role.
	role := store.RoleAdmin
	if _, err := svc.UpdateAccount(ctx, self, "ann", admin.AccountUpdate{Role: &role}); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("a domain admin promoting itself: %v, want forbidden", err)
	}
	// Nor list or revoke another's tokens.
	if _, err := svc.ListTokens(ctx, self, "root"); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("ann listing root's tokens: %v, want forbidden", err)
	}
	if err := svc.RemoveToken(ctx, self, "root", rootTok.ID); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("ann revoking root's session: %v, want forbidden", err)
	}
	// The last admin stays one.
	domain := store.RoleDomain
	if _, err := svc.UpdateAccount(ctx, root, "root", admin.AccountUpdate{Role: &domain}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("demote the last admin: %v, want a conflict", err)
	}
}

// Login says why it failed, for the audit log, behind ErrBadLogin.
func TestLoginFailureReasons(t *testing.T) {
	ctx := context.Background()
	svc := newService(t)
	if _, err := svc.AddAccount(ctx, admin.CLI(), admin.NewAccountRequest{Name: "ann", Role: store.RoleAdmin, Password: "a long enough password"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, password string
		want           error
	}{
		{"ann", "the wrong password", admin.ErrBadPassword},
		{"nobody", "the wrong password", admin.ErrUnknownAccount},
	} {
		_, _, err := svc.Login(ctx, c.name, c.password, "192.0.2.1", time.Hour)
		if !errors.Is(err, admin.ErrBadLogin) || !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want ErrBadLogin and %v", c.name, err, c.want)
		}
	}
}
