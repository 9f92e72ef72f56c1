// Package pkcs11test gives tests a PKCS#11 token: a SoftHSM 2 token, made
// in a temporary directory for the test process (Debian package softhsm2).
// When SoftHSM is missing the test skips, or fails under
// DKIMD_REQUIRE_PEERS=1 (peertest.Unavailable).
//
// It is for tests only, beside the package it stands in for (as httptest
// beside http); it imports keys/pkcs11 and peertest, and nothing of dkimd's
// services.
package pkcs11test
