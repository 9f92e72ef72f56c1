// Package deliverytest holds the real servers delivery is tested against:
// an SMTP sink on 127.0.0.1 (emersion/go-smtp's server) that records what
// it receives and can be told to fail in each way a next hop fails, and a
// throwaway TLS certificate for both ends. DNS for MX routing comes from
// dnscheck/dnstest.
//
// It is for tests only. It must not import the delivery or queue packages
// (their own tests import it) or anything else of dkimd.
package deliverytest
