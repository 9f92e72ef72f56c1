package relay

import (
	"context"
	"sync"
	"time"
)

// rateLimiter counts the messages each user sent in the current clock hour
// and UTC day, in this process (per node; sharedRate counts for a
// cluster). Memory is one entry per user that sent mail
// today; entries of past days are dropped as they are met and once a day.
type rateLimiter struct {
	perHour, perDay int // negative: no limit

	mu    sync.Mutex
	users map[string]*rateCount
	swept time.Time
}

type rateCount struct {
	hour, day     time.Time
	inHour, inDay int
}

func newRateLimiter(perHour, perDay int) *rateLimiter {
	return &rateLimiter{perHour: perHour, perDay: perDay, users: make(map[string]*rateCount)}
}

func (r *rateLimiter) current(user string, now time.Time) *rateCount {
	now = now.UTC()
	hour, day := now.Truncate(time.Hour), now.Truncate(24*time.Hour)
	if day.After(r.swept) {
		for k, c := range r.users {
			if c.day.Before(day) {
				delete(r.users, k)
			}
		}
		r.swept = day
	}
	c := r.users[user]
	if c == nil {
		c = &rateCount{hour: hour, day: day}
		r.users[user] = c
	}
	if !c.hour.Equal(hour) {
		c.hour, c.inHour = hour, 0
	}
	if !c.day.Equal(day) {
		c.day, c.inDay = day, 0
	}
	return c
}

// allow reports whether user may send one more message now.
func (r *rateLimiter) allow(_ context.Context, user string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.current(user, now)
	return (r.perHour < 0 || c.inHour < r.perHour) && (r.perDay < 0 || c.inDay < r.perDay)
}

// sent counts a message the queue accepted.
func (r *rateLimiter) sent(_ context.Context, user string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.current(user, now)
	c.inHour++
	c.inDay++
}
