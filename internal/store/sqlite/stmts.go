package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// stmts are the statements the relay runs for every message (UserByIP or
// GetUser at MAIL FROM, ActiveKeys once per message, GetDomain for its
// oversigning choice, GetKey per signature, SealedKey when a key is
// opened), prepared once at Open instead of parsed again on every call:
// profiling a relay run showed SQLite spending more time parsing these
// queries than running them.
//
// They hold no results, so every call still reads what is committed, by
// this process or another. database/sql prepares each one, once, on every
// pooled connection that runs it (inside a transaction through
// Tx.StmtContext, which reuses that connection's copy), and SQLite prepares
// it again by itself if another process changes the schema
// (sqlite3_prepare_v2).
type stmts struct {
	key         *sql.Stmt // by id
	domain      *sql.Stmt // by name
	activeKeys  *sql.Stmt // of a domain, by id
	sealedKey   *sql.Stmt // by key id
	user        *sql.Stmt // by name
	userNets    *sql.Stmt // a user's networks
	userGrants  *sql.Stmt // a user's granted domains, sorted
	addressNets *sql.Stmt // every network of users found by address, by user
}

// prepareStmts prepares the statements. It runs after migrate, since they
// name tables and columns that migrations create.
func prepareStmts(ctx context.Context, db *sql.DB) (*stmts, error) {
	s := &stmts{}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.key, `SELECT ` + keyCols + ` FROM dkim_keys WHERE id = ?`},
		{&s.domain, `SELECT ` + domainCols + ` FROM domains WHERE name = ?`},
		{&s.activeKeys, `SELECT ` + keyCols + ` FROM dkim_keys WHERE domain = ? AND state = ? ORDER BY id`},
		{&s.sealedKey, `SELECT sealed FROM dkim_key_secrets WHERE key_id = ?`},
		{&s.user, `SELECT ` + userCols + ` FROM outgoing_users WHERE name = ?`},
		{&s.userNets, `SELECT prefix FROM outgoing_user_networks WHERE user = ?`},
		{&s.userGrants, `SELECT domain FROM outgoing_user_grants WHERE user = ? ORDER BY domain`},
		{&s.addressNets, `SELECT n.user, n.prefix FROM outgoing_user_networks n JOIN outgoing_users u ON u.name = n.user
WHERE u.auth IN (?, ?) ORDER BY n.user`},
	} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("prepare %q: %w", p.query, err), s.close())
		}
		*p.dst = st
	}
	return s, nil
}

// close closes the statements prepared so far.
func (s *stmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.key, s.domain, s.activeKeys, s.sealedKey, s.user, s.userNets, s.userGrants, s.addressNets} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}
