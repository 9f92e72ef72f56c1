package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/logtest"
)

// mustData gives a function that runs an admin command on the data
// directory dir and fails the test unless it succeeds; it returns stdout.
func mustData(t *testing.T, dir string) func(stdin string, args ...string) string {
	return func(stdin string, args ...string) string {
		t.Helper()
		code, out, errs := runData(t, dir, stdin, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
}

// startServe runs "dkimd serve" with args (after "serve"), its output going
// to logs, and waits for its "serving" line. It gives the addresses that
// line names (http, submission, submissions, relay, milter, …) and a stop
// function, which the test's cleanup also calls; stop waits for serve to
// end.
func startServe(t *testing.T, logs *logtest.Buffer, args ...string) (map[string]string, func()) {
	t.Helper()
	return startServeEnv(t, logs, nil, args...)
}

// startServeEnv is startServe with env as the environment serve sees.
func startServeEnv(t *testing.T, logs *logtest.Buffer, env map[string]string, args ...string) (map[string]string, func()) {
	t.Helper()
	mark := len(logs.String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"dkimd", "serve"}, args...),
			&Env{Stdin: strings.NewReader(""), Stdout: logs, Stderr: logs, Getenv: func(k string) string { return env[k] }})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if addrs := servingAddrs(logs.String()[mark:]); addrs != nil {
			return addrs, stop
		}
		select {
		case code := <-done:
			stopped = true
			t.Fatalf("serve exited with %d before serving:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
	}
}

// servingAddrs reads the key=value pairs of serve's "serving" log line, nil
// before there is one.
func servingAddrs(log string) map[string]string {
	i := strings.Index(log, "msg=serving ")
	if i < 0 {
		return nil
	}
	line := log[i+len("msg=serving "):]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	addrs := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			addrs[k] = v
		}
	}
	return addrs
}
