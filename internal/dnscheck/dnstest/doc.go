// Package dnstest runs real DNS servers on the loopback interface for tests,
// the way net/http/httptest runs HTTP servers: each Server answers UDP and
// TCP on one random port of 127.0.0.1 from zone data given as Go values, and
// can be told to misbehave for a name (SERVFAIL, REFUSED, no answer at all,
// or truncated UDP answers that force a retry over TCP).
//
// A test starts one Server standing in for the recursive resolver, holding
// every record, and one per authoritative name server, each with its own
// data, so that servers can disagree the way they do while a change
// propagates.
//
// It is for tests only. It must import nothing from dkimd: only the standard
// library, testing and github.com/miekg/dns.
package dnstest
