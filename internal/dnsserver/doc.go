// Package dnsserver is dkimd's authoritative DNS server for a delegated
// zone (say dkim.provider.example): customers point two CNAMEs at names in
// it once, and dkimd publishes and rotates the key records behind them.
//
// It serves one zone from an in-memory snapshot of TXT records that the
// caller loads (Server.Load) or refreshes from a Source, so that a query
// never waits on a database. It answers as an authoritative server should:
// AA set and RA clear; SOA and NS at the apex (with addresses for name
// servers inside the zone); NXDOMAIN or NODATA with the SOA in the authority
// section (RFC 2308 §3); REFUSED for names outside the zone and for zone
// transfers; NOTIMP for opcodes other than QUERY; FORMERR for malformed
// queries; EDNS0 (RFC 6891) with a 1232-byte UDP payload, and the TC bit
// for a UDP answer that does not fit so the client asks again over TCP
// (RFC 7766). TXT values are split into character-strings of at most 255
// bytes (RFC 6376 §3.6.2.2).
//
// It may import dkim, the standard library and miekg/dns; it must not import
// store, keys, lifecycle, admin, web, relay or cli.
package dnsserver
