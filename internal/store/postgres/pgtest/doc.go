// Package pgtest starts a throwaway PostgreSQL server for tests, the way
// net/http/httptest starts an HTTP server: only tests import it.
//
// A test package makes one [Server] (New) and stops it in TestMain; the
// server itself starts on first use, as the user postgres when the tests
// run as root (initdb refuses root), with its data and its Unix socket in a
// fresh temporary folder and no TCP listener. [Server.Database] gives each
// test its own empty database. When PostgreSQL is not installed the test
// is skipped naming the package to install, or failed when
// DKIMD_REQUIRE_PEERS=1, as peertest does for every peer.
//
// It must import nothing of dkimd: it knows PostgreSQL, not dkimd.
package pgtest
