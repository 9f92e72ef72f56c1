package admin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

// TestUserSelectorAfterRotation (issue 12.2): after mail2026 is rotated to
// 202612 and retired, a user whose selector is mail2026 is saved for any
// other change, signs with 202612, and may be given mail2026 anew; a
// selector whose key retired with nothing after it is refused only when
// it is newly set.
func TestUserSelectorAfterRotation(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	cli := admin.CLI()
	if _, err := s.AddDomain(ctx, cli, store.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	ed := keys.Spec{Algorithm: keys.Ed25519}
	for _, sel := range []string{"mail2026", "lone"} {
		if _, err := s.GenerateKey(ctx, cli, lifecycle.NewKeyRequest{Domain: "example.com", Selector: sel, Spec: ed}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ActivateKey(ctx, cli, "example.com", sel, true); err != nil {
			t.Fatal(err)
		}
	}
	pw, auth, sel := "a long password for alice", store.AuthPassword, "mail2026"
	if _, err := s.AddUser(ctx, cli, "alice", "example.com", admin.UserChange{Auth: &auth, Password: &pw, Selector: &sel}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, cli, lifecycle.RotateRequest{Domain: "example.com", Selector: "202612", Replaces: "mail2026"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ActivateKey(ctx, cli, "example.com", "202612", true); err != nil {
		t.Fatal(err)
	}
	if k, err := s.GetKey(ctx, cli, "example.com", "mail2026"); err != nil || k.State != store.KeyRetired {
		t.Fatalf("mail2026: %+v %v, want retired", k, err)
	}
	// Another change: saved (it failed with "mail2026 … is retired and
	// will never sign again").
	off := false
	if _, err := s.UpdateUser(ctx, cli, "alice", admin.UserChange{Enabled: &off, Selector: &sel}); err != nil {
		t.Fatalf("UpdateUser with the selector unchanged: %v", err)
	}
	on := true
	if _, err := s.UpdateUser(ctx, cli, "alice", admin.UserChange{Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	// And it signs with the successor.
	foreign := true
	if _, err := s.UpdateUser(ctx, cli, "alice", admin.UserChange{AllowForeignFrom: &foreign}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Explain(ctx, cli, "alice", "x@elsewhere.example")
	if err != nil || d.Reason != policy.ReasonUserSelectorRotated || len(d.Sign) != 1 || d.Sign[0].Selector != "202612" {
		t.Fatalf("Explain = %+v, %v; want signed with 202612", d, err)
	}
	if _, err := s.SetKeyState(ctx, cli, "example.com", "lone", store.KeyRetired, false); err != nil {
		t.Fatal(err)
	}
	lone := "lone"
	if _, err := s.UpdateUser(ctx, cli, "alice", admin.UserChange{Selector: &lone}); !errors.Is(err, policy.ErrSelectorNoKey) {
		t.Fatalf("a new selector of a retired key with no successor: %v, want ErrSelectorNoKey", err)
	}
}
