// Package store defines what dkimd keeps — domains, DKIM keys with their
// sealed private keys, outgoing users, panel accounts and tokens, and the
// audit log — as plain types, the rules every stored value obeys, and the
// small interfaces a backend implements. It holds no SQL: store/sqlite and
// (later) store/postgres implement Store, and store/storetest is the one
// conformance suite both must pass.
//
// Errors are classified with errors.Is against ErrNotFound, ErrExists,
// ErrInvalid (returned as a *FieldError naming the field) and ErrConflict,
// so that the JSON API can map them to 404, 409, 422 and 409.
//
// Private keys cross this package only sealed (see keys.MasterKey.Seal and
// KeyAssociatedData); no type here has a field that marshals key material or
// a password hash to JSON.
//
// It must not import web, relay, milter, policy, cli or any database driver.
package store
