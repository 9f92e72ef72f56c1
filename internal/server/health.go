package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// readyTimeout bounds one readiness check: a load balancer asks often, and
// a database that takes longer than this to answer a trivial query is not
// one to send traffic through.
const readyTimeout = 2 * time.Second

// readyCheck is one thing /readyz checks.
type readyCheck struct {
	name  string // "store", "queue": said in the 503 answer
	check func(ctx context.Context) error
}

// readiness answers GET /readyz for load balancers: 200 when the store and
// the queue answer and the listeners are open, else 503 with the reason.
// Unauthenticated, so the reason names the part only; the error goes to
// the log.
type readiness struct {
	checks    []readyCheck
	listening atomic.Bool // every listener is open; false again at shutdown
	log       *slog.Logger
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if reason := rd.notReady(r.Context()); reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", reason)
		return
	}
	fmt.Fprintln(w, "ready")
}

// notReady gives why the node is not ready, "" when it is.
func (rd *readiness) notReady(ctx context.Context) string {
	if !rd.listening.Load() {
		return "listeners not open"
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for _, c := range rd.checks {
		if err := c.check(ctx); err != nil {
			if rd.log != nil {
				rd.log.Warn("not_ready", "part", c.name, "err", err)
			}
			return c.name + " unreachable"
		}
	}
	return ""
}
