// Package delegation holds what dkimd knows about delegated DKIM: a
// customer creates two CNAMEs once, "<selector>._domainkey.<domain>" to
// "<selector>.<label>.<zone>" in dkimd's own zone, and dkimd serves the key
// records behind them (dnsserver) and rotates keys there on a schedule.
//
// It gives a domain's name in the zone and the two CNAME records to show
// (Records), the zone's TXT records from the store (Source, for
// dnsserver), the record value a key in each state publishes (Value), and
// the check that the customer's CNAMEs are in place at every authoritative
// server of the customer's zone and lead to the right target (CheckCNAMEs).
//
// It may import store, keys, dkim, dnscheck, dnsserver, dnsupdate and the
// standard library; it must not import admin, lifecycle, web, relay or cli.
package delegation
