package panel

import (
	"net/http"
	"slices"

	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
)

// keyActionInfo is a step in a key's life the panel offers, each behind a
// confirmation page.
type keyActionInfo struct {
	Name   string
	Label  string
	Title  string
	Button string
	// Explain says what happens, in a few sentences.
	Explain string
	// Danger marks what cannot be undone.
	Danger bool
	// to is the state it moves the key to; empty for rotate, which makes
	// a new key.
	to   store.KeyState
	from []store.KeyState
	// deletes marks delete, offered (in place of revoke) only for a
	// pending key that never signed and was never seen in DNS.
	deletes bool
}

func (a keyActionInfo) applies(s store.KeyState) bool {
	if a.to == "" {
		return slices.Contains(a.from, s)
	}
	return s.CanBecome(a.to)
}

func keyActions() []keyActionInfo {
	return []keyActionInfo{
		{Name: "activate", Label: "Activate", Title: "Activate this key", Button: "Activate key", to: store.KeyActive,
			Explain: "The key starts signing mail. dkimd first checks that its record is published on every authoritative name server: a signature receivers cannot verify is worse than none."},
		{Name: "rotate", Label: "Rotate", Title: "Rotate this key", Button: "Generate the new key", from: []store.KeyState{store.KeyActive},
			Explain: "A new key of the same kind is made on a new selector. This key goes on signing meanwhile: no gap, and no signature that cannot verify."},
		{Name: "retire", Label: "Retire", Title: "Retire this key", Button: "Retire key", to: store.KeyRetired,
			Explain: "The key stops signing at once. Keep its record published until the signatures made with it have expired (a few days), so that mail already sent still verifies."},
		{Name: "revoke", Label: "Revoke", Title: "Revoke this key", Button: "Revoke key", to: store.KeyRevoked, Danger: true,
			Explain: "The key stops signing, and its record must be replaced by one with an empty p=, so that every signature made with it fails to verify. dkimd revokes only a retired key whose signatures have expired, unless you force it because the private key may have leaked. It cannot be undone."},
		{Name: "delete", Label: "Delete", Title: "Delete this key", Button: "Delete key", from: []store.KeyState{store.KeyPending}, deletes: true,
			Explain: "This key never signed and no check has seen its record in DNS, so nothing refers to it: it is deleted outright, with its private key, and its selector is free again. dkimd looks in DNS once more first; if the record is there after all, the key is kept, to be revoked instead."},
		{Name: "archive", Label: "Archive", Title: "Archive this key", Button: "Archive key", to: store.KeyArchived,
			Explain: "The key is kept for the record only: remove its record from DNS. Its selector is never used again."},
	}
}

func keyAction(name string) (keyActionInfo, bool) {
	for _, a := range keyActions() {
		if a.Name == name {
			return a, true
		}
	}
	return keyActionInfo{}, false
}

type confirmView struct {
	Key    store.Key
	Action keyActionInfo
	// OnlyActive warns that retiring or revoking the domain's only active
	// key leaves its mail unsigned.
	OnlyActive bool
	// Next says exactly what happens after the step, given the domain's
	// settings (lifecycle.AfterRotate, Settings.AfterActivate).
	Next string
	// Followers are the users whose selector leads to the key that
	// activating this one retires: they sign with this one after.
	Followers []string
	// Selector is the new key's, for rotate.
	Selector string
	Force    bool
	Errors   formErrors
}

// confirmPage asks before a key changes state (or is rotated), saying
// what will happen.
func (q *preq) confirmPage() error {
	return q.showConfirm(http.StatusOK, confirmView{}, nil)
}

func (q *preq) showConfirm(status int, cv confirmView, errs formErrors) error {
	d, k, err := q.key()
	if err != nil {
		return err
	}
	a, ok := keyAction(q.r.PathValue("action"))
	if !ok {
		return web.NewError(http.StatusNotFound, web.CodeNotFound, "No such page.", nil)
	}
	if !a.applies(k.State) {
		if err := store.CheckTransition(k.State, a.to); err != nil && a.to != "" {
			return err
		}
		return web.NewError(http.StatusConflict, web.CodeConflict, "Only an active key can be rotated.", nil)
	}
	if a.deletes {
		ok, err := q.p.admin.KeyDeletable(q.ctx, q.actor, d.Name, k.Selector)
		if err != nil {
			return err
		}
		if !ok {
			return web.NewError(http.StatusConflict, web.CodeConflict, "this key's record was seen in DNS: revoke it instead", nil)
		}
	}
	cv.Key, cv.Action, cv.Errors = k, a, errs
	if a.Name == "rotate" && cv.Selector == "" {
		cv.Selector = q.suggestSelector(d.Name)
	}
	switch a.Name {
	case "rotate":
		cv.Next = lifecycle.AfterRotate(store.Key{Selector: "the new key"}, &k, d.AutoActivate, 0)
	case "activate":
		replaced, followers, err := q.replacedBy(k)
		if err != nil {
			return err
		}
		cv.Next, cv.Followers = q.p.admin.LifecycleSettings().AfterActivate(k, replaced, q.p.now()), followers
	}
	if a.to == store.KeyRetired || a.to == store.KeyRevoked {
		if k.State == store.KeyActive {
			ks, err := q.p.admin.ListKeys(q.ctx, q.actor, d.Name)
			if err != nil {
				return err
			}
			n := 0
			for _, x := range ks {
				if x.State == store.KeyActive {
					n++
				}
			}
			cv.OnlyActive = n == 1
		}
	}
	q.render(status, "confirm", &view{Title: a.Title, Nav: "domains", Domain: &d, Tab: "keys", Data: cv})
	return nil
}

// replacedBy gives the active key that activating k retires (nil for
// none), and the users whose selector signs with that key now, by name.
func (q *preq) replacedBy(k store.Key) (*store.Key, []string, error) {
	if k.Replaces == 0 {
		return nil, nil, nil
	}
	all, err := q.p.admin.ListKeys(q.ctx, q.actor, k.Domain)
	if err != nil {
		return nil, nil, err
	}
	i := slices.IndexFunc(all, func(x store.Key) bool { return x.ID == k.Replaces })
	if i < 0 || all[i].State != store.KeyActive {
		return nil, nil, nil
	}
	us, err := q.p.admin.ListUsers(q.ctx, q.actor, k.Domain)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, u := range us {
		if u.Domain != k.Domain || u.Selector == "" {
			continue
		}
		if r := policy.ResolveSelector(all, u.Selector); r.Signing != nil && r.Signing.ID == all[i].ID {
			names = append(names, u.Name)
		}
	}
	return &all[i], names, nil
}

// keyAction does what the confirmation page asked.
func (q *preq) keyAction() error {
	d, k, err := q.key()
	if err != nil {
		return err
	}
	a, ok := keyAction(q.r.PathValue("action"))
	if !ok {
		return web.NewError(http.StatusNotFound, web.CodeNotFound, "No such page.", nil)
	}
	if a.Name == "rotate" {
		return q.rotate(d, k)
	}
	if a.deletes {
		err := q.p.admin.DeleteKey(q.ctx, q.actor, d.Name, k.Selector)
		if errs, ok := formProblem(err, nil); ok {
			return q.showConfirm(statusOf(err), confirmView{}, errs)
		}
		if err != nil {
			return err
		}
		q.redirect(domainPath(d.Name, "keys") + "?done=key_deleted")
		return nil
	}
	force := (a.to == store.KeyActive || a.to == store.KeyRevoked) && q.r.PostFormValue("force") == "on"
	_, err = q.p.admin.SetKeyState(q.ctx, q.actor, d.Name, k.Selector, a.to, force)
	if errs, ok := formProblem(err, nil); ok {
		return q.showConfirm(statusOf(err), confirmView{Force: force}, errs)
	}
	if err != nil {
		return err
	}
	q.redirect(domainPath(d.Name, "keys", k.Selector) + "?done=" + string(map[store.KeyState]string{
		store.KeyActive: "activated", store.KeyRetired: "retired", store.KeyRevoked: "revoked", store.KeyArchived: "archived",
	}[a.to]))
	return nil
}

// rotate makes the successor of an active key: the same kind, on a new
// selector.
func (q *preq) rotate(d store.Domain, k store.Key) error {
	if k.State != store.KeyActive {
		return web.NewError(http.StatusConflict, web.CodeConflict, "Only an active key can be rotated.", nil)
	}
	sel := q.r.PostFormValue("selector")
	g, err := q.p.admin.RotateKey(q.ctx, q.actor, lifecycle.RotateRequest{Domain: d.Name, Selector: sel, Spec: k.Spec(), Replaces: k.Selector})
	if errs, ok := formProblem(err, map[string]string{"selector": "selector"}); ok {
		if errs["selector"] == "" && errs[""] != "" && statusOf(err) == http.StatusConflict {
			errs = formErrors{"selector": errs[""]}
		}
		return q.showConfirm(statusOf(err), confirmView{Selector: sel}, errs)
	}
	if err != nil {
		return err
	}
	q.redirect(domainPath(d.Name, "keys", g.Key.Selector) + "?done=rotated")
	return nil
}
