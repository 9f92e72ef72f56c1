// Package peertest finds and runs the DKIM implementations dkimd is checked
// against, dkimpy (python3-dkim) and OpenDKIM, the way net/http/httptest
// stands beside net/http: only tests import it.
//
// [Dkimpy] and [OpenDKIM] return a peer when it is installed. When it is
// not, they skip the test naming the package to install, and when the
// environment has DKIMD_REQUIRE_PEERS=1 (CI sets it) they fail it instead,
// so that a missing peer never passes unnoticed; [Unavailable] does the same
// for a test's own needs. Problems running a peer (it crashes, or its output
// cannot be read) fail the test; what a peer decides about a message is
// returned as data ([Verdict], or an error wrapping [ErrRefused]) for the
// test to judge. Every file goes under t.TempDir(). Keys reach the peers
// only through files there, and key records only through a lookup function
// (dkimpy) or a TestPublicKeys file (OpenDKIM): no DNS is ever asked.
//
// # dkimpy
//
// The driver is the embedded script dkimpy.py, always run as
// /usr/bin/python3 -I (another python3 may come first on PATH without the
// package). Starting Python and importing dkim costs about 0.3 s, so
// [DkimpyPeer.VerifyAll] and [DkimpyPeer.SignAll] take a batch of messages
// in one process. The driver verifies each DKIM-Signature field on its own
// (dkim.verify checks only the first) and reports dkimpy's exception or
// logged error as the reason. dkimpy reads RSA keys only as PKCS#1 ("RSA
// PRIVATE KEY"; the PKCS#8 PEM dkimd writes does not load) and Ed25519 keys
// as the base64 seed; the peer converts from a crypto.Signer. dkimpy reads a
// message with bare LF line ends as if they were CRLF, when signing and when
// verifying. Ed25519 needs PyNaCl ([DkimpyPeer.Ed25519]).
//
// # OpenDKIM
//
// opendkim -t FILES runs the filter over message files without an MTA
// ("test mode"). With Mode v and TestPublicKeys it verifies; with -vv it also
// prints the Authentication-Results field it would add, one dkim= result per
// signature, which [OpenDKIMPeer.Verify] reads, many files to one run.
//
// With Mode s, test mode signs as well, although opendkim(8) describes -t as
// verifying only: it prints the DKIM-Signature field it would add after an
// "opendkim: FILE:" line. That is how [OpenDKIMPeer.Sign] gets real
// rsa-sha256 and ed25519-sha256 signatures without an MTA or a milter
// session. opendkim-testmsg is not used: it signs rsa-sha1 only, which
// SignatureAlgorithm rsa-sha1 in test mode produces too, for negative tests.
// Found with OpenDKIM 2.11.0 (Debian 2.11.0~beta2):
//
//   - SignatureAlgorithm is one setting for the whole filter, and a key of
//     the other type fails ("EVP_PKEY_get1_RSA() failed"): one key, one
//     configuration, one signature per run, about 10 ms each.
//   - A KeyTable with a SigningTable of "*" signs whatever the From domain;
//     with Domain and KeyFile it signs only mail from that domain.
//   - The key file is under t.TempDir(), inside world-writable /tmp, so
//     RequireSafeKeys must be off or opendkim will not start (exit 78).
//   - Ed25519 with simple header canonicalization is broken: it signs the
//     DKIM-Signature field with "b=" on the line of "h=" but writes the
//     field folded before "b=", so no verifier passes it, OpenDKIM
//     included. Joining the two lines makes dkimpy pass it. RSA and relaxed
//     header canonicalization are fine.
//   - Under relaxed body canonicalization it will not take a body without a
//     final CRLF: it refuses to sign ("CRLF at end of body missing") and,
//     verifying, says "message not signed". Under simple it treats the body
//     as if the CRLF were there (RFC 6376 §3.4.3).
//   - Bare CRs (which RFC 5322 §2.3 forbids): under relaxed body
//     canonicalization it drops them ("a\rb \r c" hashes as "ab c"), and a
//     body ending in a bare CR hashes as if the CR began the missing CRLF;
//     dkimpy keeps bare CRs as content.
//   - Test mode rebuilds header fields as "Name: value", so simple header
//     canonicalization can fail there on unusual spacing even when the
//     signature is right; a milter run does not have this problem.
//   - It reads LF-only message files as CRLF, for signing and verifying.
//   - opendkim -V lists the signing algorithms it supports; [OpenDKIMPeer]
//     reads that list ([OpenDKIMPeer.Supports]) rather than guessing from
//     the version whether Ed25519 (OpenDKIM 2.11 and later) is there.
//
// This package must not import dkimd's own DKIM code (internal/dkim): a
// peer's verdict must not depend on the code it is meant to check.
package peertest
