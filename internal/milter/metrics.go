package milter

import (
	"sync"

	"github.com/dkimd/dkimd/internal/policy"
)

// Results of a message, the first label of the milter's counters.
const (
	// ResultSigned: the signatures were inserted.
	ResultSigned = "signed"
	// ResultUnsigned: passed on unsigned by the decision's reason.
	ResultUnsigned = "unsigned"
	// ResultTempfail: a signature was due and could not be made; the MTA
	// was told to try later.
	ResultTempfail = "tempfail"
	// ResultRejected: the message itself cannot be signed (a header that
	// does not parse or is too large); the MTA was told to refuse it.
	ResultRejected = "rejected"
	// ResultAcceptedOnError: as tempfail or rejected, but passed on
	// unsigned because OnError is OnErrorAccept.
	ResultAcceptedOnError = "accepted_on_error"
)

// Metrics counts the milter's decisions, for /metrics. The zero value is
// ready; one Metrics may be shared by several servers.
type Metrics struct {
	mu sync.Mutex
	n  map[MetricKey]int64
}

// MetricKey is one counter: a result and the decision's reason (for
// tempfail and rejected, the failure class).
type MetricKey struct {
	Result string
	Reason policy.Reason
}

// Snapshot copies the counters.
func (m *Metrics) Snapshot() map[MetricKey]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[MetricKey]int64, len(m.n))
	for k, v := range m.n {
		out[k] = v
	}
	return out
}

func (m *Metrics) add(result string, reason policy.Reason) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[MetricKey]int64{}
	}
	m.n[MetricKey{result, reason}]++
}
