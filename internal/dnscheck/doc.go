// Package dnscheck looks a DKIM key record up in DNS and explains, in words
// a mail administrator can act on, whether it is published and right: it asks
// a recursive resolver and, directly, every authoritative name server of the
// zone that holds the record, follows CNAMEs, compares the published key with
// the expected one by value, and tells apart a missing record, a different
// key, a value cut at 255 characters, stray quotes or backslashes pasted into
// the value, several records at one name, wrong tags, a revoked key, a CNAME
// that leads nowhere, servers that disagree while a change propagates, and
// DNS that failed for now.
//
// Check is pure: it reads no configuration and keeps no state, so the key
// lifecycle (promote a pending key once its record is seen, archive a revoked
// one once its empty p= is out) can call it with a key and an expectation.
//
// The dnscheck/dnstest package beside it runs real DNS servers on loopback
// for tests.
//
// It may import the dkim package, the standard library and miekg/dns; it must
// not import keys, store, policy, web, relay, milter, queue or cli.
package dnscheck
