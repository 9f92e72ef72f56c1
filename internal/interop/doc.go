// Package interop holds tests, and nothing else, that check dkimd's DKIM
// signatures against other implementations in both directions: what dkimd
// signs must pass in dkimpy and OpenDKIM, and what they sign must pass in
// dkimd. A tampered copy of every message (one body letter changed) must
// fail in every verifier, so a verifier that passes everything cannot hide.
//
// Every message shape in messages_test.go is signed with RSA 1024, 2048 and
// 4096, Ed25519, and RSA with Ed25519 together, in relaxed/relaxed and
// simple/simple; dkimpy signs them with RSA and Ed25519 in three
// canonicalizations, OpenDKIM in two. The keys are made once per test
// binary. The peers run through internal/peertest: a missing peer skips its
// part, and with DKIMD_REQUIRE_PEERS=1 fails it.
//
// What the peers do (dkimpy 1.1.4, OpenDKIM 2.11.0):
//
//   - Bare LF line ends: dkimd reads LF as CRLF when signing and verifying,
//     so its signature covers the CRLF form. The peers get the file as a
//     Unix mailbox would hold it, the DKIM-Signature fields in LF too; both
//     read LF as CRLF and pass it, and dkimd passes what they sign from it.
//   - Ed25519: both verify ed25519-sha256, including next to an RSA
//     signature in one message, and both sign it. OpenDKIM's Ed25519
//     signatures with simple header canonicalization are broken (see
//     internal/peertest), so those rows are skipped; so are rows with
//     ed25519 when an older OpenDKIM does not list ed25519-sha256.
//   - Messages RFC 5322 does not allow, a body without a final CRLF or with
//     bare CRs: dkimd and dkimpy agree on every one, both ways. OpenDKIM
//     differs on some under relaxed body canonicalization and on a final
//     bare CR, and its test mode loses unusual header spacing under simple
//     header canonicalization; openDKIMQuirk names each skipped row and why.
//   - rsa-sha1: both peers still sign and pass it; dkimd gives permerror
//     (RFC 8301 §3.1).
//   - l=: dkimd passes dkimpy's l= signature, and calls it policy, where
//     dkimpy still says pass, once text follows the signed length.
//
// This package has no non-test code and must not be imported.
package interop
