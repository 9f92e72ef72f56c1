package admin

import (
	"context"
	"slices"

	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/policy"
)

// Explain says what would become of a message from user with this From
// header, and why, without sending mail: the verdict the relay gives
// (policy.Evaluate, the same function), refused, unsigned or signed with
// which keys. A signed verdict carries a warning for each signature that
// would not verify, or may not, because of what DNS served its key at the
// latest stored check. The actor must manage the user's domain.
func (s *Service) Explain(ctx context.Context, a Actor, user, from string) (policy.Decision, error) {
	u, err := s.GetUser(ctx, a, user)
	if err != nil {
		return policy.Decision{}, err
	}
	d := policy.Evaluate(ctx, s.o.Store, policy.Request{User: &u, From: []string{from}})
	if d.Err != nil {
		return d, d.Err
	}
	if d.Signs() {
		sts, err := s.o.Lifecycle.Status(ctx, d.Domain.String())
		if err != nil {
			return d, err
		}
		d.Warnings = signatureWarnings(d, sts)
	}
	s.log.Info("policy_explain", "actor", a.Name, "decision", d)
	return d, nil
}

// signatureWarnings gives the warnings for the signatures of d, from the
// statuses of their domain's keys.
func signatureWarnings(d policy.Decision, sts []lifecycle.Status) []policy.KeyWarning {
	var ws []policy.KeyWarning
	for _, sig := range d.Sign {
		for _, st := range sts {
			if st.Key.ID != sig.KeyID {
				continue
			}
			if bad, msg := st.SignatureProblem(); msg != "" {
				ws = append(ws, policy.KeyWarning{Selector: sig.Selector, Bad: bad, Message: msg})
			}
		}
	}
	// The failures first.
	slices.SortStableFunc(ws, func(a, b policy.KeyWarning) int {
		if a.Bad == b.Bad {
			return 0
		}
		if a.Bad {
			return -1
		}
		return 1
	})
	return ws
}
