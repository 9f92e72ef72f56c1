// Package queuetest holds the real servers the queue is tested against: an
// SMTP sink on 127.0.0.1 (emersion/go-smtp's server) that records what it
// receives and can be told to fail in each way a next hop fails, a DNS
// server on loopback (miekg/dns) answering from a small zone, and a
// throwaway TLS certificate for both ends.
//
// It is for tests only. It must not import the queue package (the queue's
// own tests import it) or anything else of dkimd.
package queuetest
