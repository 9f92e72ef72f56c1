// Package mailaddr holds the one parser of mail domains and addresses and
// their canonical form: Domain (IDNA A-labels, lower case, no trailing dot,
// validated once by ParseDomain), Address (an envelope mailbox, ParseAddress)
// and the one address of a From header field (ParseFromHeader). Every
// package that takes a domain or address from outside — the API, the CLI,
// SMTP, a message header — parses it here, so that two spellings of one
// domain can never be two domains.
//
// Domain is a struct with an unexported field rather than a string type: a
// conversion such as mailaddr.Domain("Example.COM.") would otherwise make a
// Domain that never went through the parser. The zero Domain means "none".
//
// The DKIM library (internal/dkim) does not use it: it must import only the
// standard library, and it checks d=, i= and s= tags of arbitrary mail by
// RFC 6376's ABNF, which is looser than a domain dkimd keeps keys for.
//
// It may import the standard library and golang.org/x/net/idna, nothing of
// dkimd: it is a leaf that store, policy, relay, queue and delivery share.
package mailaddr
