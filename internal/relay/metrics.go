package relay

import (
	"sync"

	"github.com/dkimd/dkimd/internal/policy"
)

// Metrics counts what the relay accepted, for /metrics. The zero value is
// ready; one Metrics may be shared by several servers.
type Metrics struct {
	mu       sync.Mutex
	signed   int64
	unsigned map[policy.Reason]int64
}

// MetricsSnapshot is a copy of the counters.
type MetricsSnapshot struct {
	// Signed counts messages queued with at least one signature.
	Signed int64
	// Unsigned counts messages queued without a signature, by the reason
	// of the signing decision.
	Unsigned map[policy.Reason]int64
}

// observe counts one queued message.
func (m *Metrics) observe(d policy.Decision) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if d.Signs() {
		m.signed++
		return
	}
	if m.unsigned == nil {
		m.unsigned = map[policy.Reason]int64{}
	}
	m.unsigned[d.Reason]++
}

// Snapshot copies the counters.
func (m *Metrics) Snapshot() MetricsSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := MetricsSnapshot{Signed: m.signed, Unsigned: make(map[policy.Reason]int64, len(m.unsigned))}
	for r, n := range m.unsigned {
		s.Unsigned[r] = n
	}
	return s
}
