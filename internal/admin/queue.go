package admin

import (
	"context"
	"fmt"

	"github.com/dkimd/dkimd/internal/queue"
)

// The queue operations are for admins: a queued message may come from any
// tenant's user.

// ListQueue gives a summary of every queued message.
func (s *Service) ListQueue(ctx context.Context, a Actor) ([]queue.Summary, error) {
	q, err := s.queue(a)
	if err != nil {
		return nil, err
	}
	return q.List(ctx)
}

// GetQueued gives one queued message's envelope and per-recipient state.
func (s *Service) GetQueued(ctx context.Context, a Actor, id string) (queue.Message, error) {
	q, err := s.queue(a)
	if err != nil {
		return queue.Message{}, err
	}
	return q.Get(ctx, id)
}

// RetryQueued makes a message's deferred recipients due now.
func (s *Service) RetryQueued(ctx context.Context, a Actor, id string) error {
	q, err := s.queue(a)
	if err != nil {
		return err
	}
	if err := q.Retry(ctx, id); err != nil {
		return err
	}
	return s.audit(ctx, a, "queue.retry", "message", id, "", "")
}

// RemoveQueued drops a message from the queue without a bounce.
func (s *Service) RemoveQueued(ctx context.Context, a Actor, id string) error {
	q, err := s.queue(a)
	if err != nil {
		return err
	}
	m, err := q.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := q.Remove(ctx, id); err != nil {
		return err
	}
	return s.audit(ctx, a, "queue.remove", "message", id, "", fmt.Sprintf("from <%s>, %d recipients, user %s", m.Envelope.From, len(m.Envelope.To), m.Envelope.User))
}

func (s *Service) queue(a Actor) (queue.Queue, error) {
	if err := requireAdmin(a); err != nil {
		return nil, err
	}
	if s.o.Queue == nil {
		return nil, fmt.Errorf("%w: no queue here", ErrNoQueue)
	}
	return s.o.Queue, nil
}
