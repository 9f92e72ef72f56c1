package queue

import (
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestNanos: the index keeps times as Unix nanoseconds, in order; times a
// hand-edited state file could hold beyond that range are clamped, not
// wrapped (a far-future Next that wrapped into the past would make its
// message due in a loop).
func TestNanos(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		want int64
	}{
		{"an ordinary time", now, now.UnixNano()},
		{"a time in another zone", now.In(time.FixedZone("x", 3600)), now.UnixNano()},
		{"the zero time is 0 (due now)", time.Time{}, 0},
		{"year 9999 is clamped", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), math.MaxInt64},
		{"year 1 is clamped", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), math.MinInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nanos(tt.t); got != tt.want {
				t.Fatalf("nanos = %d, want %d", got, tt.want)
			}
			if back := fromNanos(nanos(tt.t)); tt.want != math.MaxInt64 && tt.want != math.MinInt64 && !back.Equal(tt.t) {
				t.Fatalf("fromNanos(nanos(t)) = %v, want %v", back, tt.t)
			}
		})
	}
}

// TestSenderCacheShares: index entries of messages from one sender share
// one copy of the address, which is not the caller's string.
func TestSenderCacheShares(t *testing.T) {
	var c senderCache
	line := "MAIL FROM:<alice@sender.test> SIZE=1000"
	fromLine := line[11:28] // a substring, as a parser hands it out
	a := c.intern(fromLine)
	b := c.intern(strings.Clone("alice@sender.test"))
	if a != "alice@sender.test" || b != a {
		t.Fatalf("intern = %q, %q", a, b)
	}
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("two copies of one sender")
	}
	if unsafe.StringData(a) == unsafe.StringData(fromLine) {
		t.Error("the cache keeps the caller's buffer alive")
	}
	if got := c.intern(""); got != "" {
		t.Errorf("null sender = %q", got)
	}
}
