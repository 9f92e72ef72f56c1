// Package storetest is the one conformance suite every store.Store backend
// must pass: SQLite now, PostgreSQL later, with no new tests. A backend's
// tests call Run with a function that opens a fresh, empty store.
//
// It may import store, keys and auth (to make real sealed keys and password
// hashes) and the standard testing packages; it must not import a backend.
package storetest
