// Package dnsupdate publishes DKIM key records at a customer's own
// authoritative server by RFC 2136 DNS UPDATE, signed with TSIG (RFC 8945,
// HMAC-SHA256), and explains failures in words: REFUSED (the key may not
// update that name), NOTAUTH (a wrong key, or clocks apart), NOTZONE, a
// server that does not answer.
//
// It may import dkim, the standard library and miekg/dns; it must not import
// store, keys, lifecycle, admin, web or cli (the caller opens the sealed
// TSIG secret and hands it over).
package dnsupdate
