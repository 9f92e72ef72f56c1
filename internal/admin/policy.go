package admin

import (
	"context"

	"github.com/dkimd/dkimd/internal/policy"
)

// Explain says which keys would sign a message from user with this From
// header, and why, without sending mail. The actor must manage the user's
// domain.
func (s *Service) Explain(ctx context.Context, a Actor, user, from string) (policy.Decision, error) {
	u, err := s.GetUser(ctx, a, user)
	if err != nil {
		return policy.Decision{}, err
	}
	d := policy.Decide(ctx, s.o.Store, &u, from)
	if d.Err != nil {
		return d, d.Err
	}
	s.log.Info("policy_explain", "actor", a.Name, "decision", d)
	return d, nil
}
