// Package systemtest runs the dkimd binary the way an operator does: built
// once with go build, set up with the admin commands on a data directory,
// started as "dkimd serve" in its own process, fed mail by concurrent SMTP
// clients, killed with SIGKILL or stopped with SIGTERM and started again on
// the same data. What reaches the next hop (a deliverytest.Sink) is checked
// against what the clients were told: every message answered 250 arrives,
// complete and with a valid DKIM signature.
//
// It holds tests only; nothing imports it. It drives dkimd from outside,
// through its command line, SMTP and /metrics, so it must not import the
// packages that make up the service (cli, relay, queue, policy, store,
// admin). It uses the test doubles beside them (delivery/deliverytest, peertest)
// and internal/dkim to verify signatures.
//
// The tests take tens of seconds and are skipped with -short.
package systemtest
