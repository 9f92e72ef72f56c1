// Package dkim signs and verifies email with DomainKeys Identified Mail
// (RFC 6376, RFC 8301, RFC 8463), and renders and parses the DNS key records
// that go with it.
//
// Signing and verifying stream the message: the header is kept (it is
// bounded), the body is canonicalized and hashed as it arrives, so memory does
// not grow with the size of the body. Several signatures are made in one pass
// over the message, sharing the body hash where their canonicalization agrees.
// Bare LF line ends are read as CRLF, alike when signing and verifying.
//
// The package takes keys as crypto.Signer and public keys from a TXT lookup
// function; it never looks keys up itself. It must not import the store, keys,
// policy, web, relay or cli packages: only the standard library.
package dkim
