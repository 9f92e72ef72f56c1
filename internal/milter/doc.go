// Package milter signs mail inside an MTA that is already there: it is a
// milter (the Sendmail mail filter protocol, version 6, which Postfix speaks
// too) built on the low-level server of github.com/d--j/go-milter. Postfix
// or Sendmail hands it each message's envelope macros, header fields and
// body; it identifies the sender as one of dkimd's outgoing users (the SASL
// login in {auth_authen}, else the client address in {client_addr}),
// applies the signing rule of the policy package, hashes the body as it
// arrives and, at the end of the message, asks the MTA to insert the
// DKIM-Signature fields.
//
// A message from nobody dkimd knows is passed on unsigned: it may well be
// inbound mail. A signature that is due but cannot be made never lets the
// message through half-signed: the MTA is told to try again later (or, if
// configured, to pass it on unsigned).
//
// It may import policy, dkim, store and keys; it must not import web, cli,
// relay or admin. It reaches the store and the key source only through the
// small interfaces declared here.
package milter
