// Package policy decides who may sign as which domain with which key, and
// says why: the signing rule of issue 3, as pure functions over the small
// Directory interface declared here (a store.Store satisfies it).
//
// Evaluate is the one decision every front end makes (the relay, the
// milter, and the explainer behind the panel, API and CLI), so that they
// agree: a message is refused (a disabled user, not exactly one From
// field, or a From domain the user may not send as, unless it may send
// foreign mail), deferred (the store did not answer), or else passed on
// by the signing rule. Evaluate reads the store only, never DNS.
//
// The signing rule, in order:
//
//  1. a re-authenticating user's mail is never signed;
//  2. if the From domain has active keys and the user may sign as it (its
//     owner domain or a granted one), sign as the From domain with every
//     active key it has (e.g. RSA and Ed25519);
//  3. else if the user has a DKIM selector, sign as the owner domain with
//     the active key that selector names there, or, when a rotation
//     replaced that key, with its active successor (ResolveSelector);
//  4. else do not sign.
//
// A disabled user, a From header with no address, several addresses or
// none that parses, and a selector naming no active key each get a reason
// of their own, never a guess. Nobody ever signs as a domain they neither
// own nor were granted; a sub-domain is a domain of its own.
//
// The From domain is what mailaddr.ParseFromHeader makes of the header
// field, and Decision carries it and the d= domain as mailaddr.Domain: the
// one canonical form the store and the relay compare with.
//
// It must not import web, relay, milter, cli or a store backend; it does
// no I/O but through Directory.
package policy
