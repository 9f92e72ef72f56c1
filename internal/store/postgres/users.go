package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/store"
)

const userCols = `name, domain, auth, password_hash, identity_header, enabled, selector, allow_foreign_from, created, updated`

const userQuery = `SELECT ` + userCols + ` FROM outgoing_users WHERE name = $1`

func scanUser(row interface{ Scan(...any) error }) (store.OutgoingUser, error) {
	var u store.OutgoingUser
	var auth string
	var enabled, foreign bool
	var created, updated int64
	if err := row.Scan(&u.Name, &u.Domain, &auth, &u.PasswordHash, &u.IdentityHeader, &enabled,
		&u.Selector, &foreign, &created, &updated); err != nil {
		return u, err
	}
	u.Auth = store.AuthKind(auth)
	u.Enabled, u.AllowForeignFrom = enabled, foreign
	u.Created, u.Updated = fromStamp(created), fromStamp(updated)
	return u, nil
}

// loadUserLists fills in networks and granted domains of users, with one
// query for each list whatever the number of users.
func loadUserLists(ctx context.Context, q querier, users []store.OutgoingUser) error {
	if len(users) == 0 {
		return nil
	}
	idx := make(map[string]int, len(users))
	for i, u := range users {
		idx[u.Name] = i
	}
	where, args := ``, []any{}
	if len(users) == 1 {
		where, args = ` WHERE user_name = $1`, []any{users[0].Name}
	}
	rows, err := q.QueryContext(ctx, `SELECT user_name, prefix FROM outgoing_user_networks`+where+` ORDER BY user_name`, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name, prefix string
		if err := rows.Scan(&name, &prefix); err != nil {
			rows.Close()
			return err
		}
		p, err := parseNetwork(name, prefix)
		if err != nil {
			rows.Close()
			return err
		}
		if i, ok := idx[name]; ok {
			users[i].Networks = append(users[i].Networks, p)
		}
	}
	// Next closed the rows; a read cut short shows only here.
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT user_name, domain FROM outgoing_user_grants`+where+` ORDER BY user_name, domain`, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name, dom string
		if err := rows.Scan(&name, &dom); err != nil {
			rows.Close()
			return err
		}
		if i, ok := idx[name]; ok {
			users[i].GrantedDomains = append(users[i].GrantedDomains, dom)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range users {
		sortNetworks(users[i].Networks)
	}
	return nil
}

func parseNetwork(user, prefix string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return p, fmt.Errorf("user %s: stored network %q: %w", user, prefix, err)
	}
	return p, nil
}

// sortNetworks puts networks in the order Normalize gives, so that a stored
// user reads back equal.
func sortNetworks(nets []netip.Prefix) {
	slices.SortFunc(nets, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}

// userWithLists selects a user (as u) with its networks and granted
// domains, each list joined by commas (neither a network nor a domain name
// holds one): one statement, so one snapshot and one round trip, for the
// relay's lookups on every message.
const userWithLists = `SELECT ` + userCols + `,
	coalesce((SELECT string_agg(n.prefix, ',') FROM outgoing_user_networks n WHERE n.user_name = u.name), ''),
	coalesce((SELECT string_agg(g.domain, ',' ORDER BY g.domain) FROM outgoing_user_grants g WHERE g.user_name = u.name), '')
FROM outgoing_users u`

// scanUserWithLists reads a row of userWithLists.
func scanUserWithLists(row interface{ Scan(...any) error }) (store.OutgoingUser, error) {
	var nets, grants string
	u, err := scanUser(scanExtra{row, []any{&nets, &grants}})
	if err != nil {
		return u, err
	}
	if nets != "" {
		for _, prefix := range strings.Split(nets, ",") {
			p, err := parseNetwork(u.Name, prefix)
			if err != nil {
				return u, err
			}
			u.Networks = append(u.Networks, p)
		}
		sortNetworks(u.Networks)
	}
	if grants != "" {
		u.GrantedDomains = strings.Split(grants, ",")
	}
	return u, nil
}

// scanExtra appends destinations to a Scan.
type scanExtra struct {
	row   interface{ Scan(...any) error }
	extra []any
}

func (s scanExtra) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra...)...) }

// getUser reads a user with q (the DB, or a transaction).
func (d *DB) getUser(ctx context.Context, q querier, name string) (store.OutgoingUser, error) {
	u, err := scanUserWithLists(q.QueryRowContext(ctx, userWithLists+` WHERE u.name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, store.Explain(store.ErrNotFound, "User %s was not found.", name)
	}
	return u, err
}

// writeUserLists replaces a user's networks and grants.
func writeUserLists(ctx context.Context, tx *sql.Tx, u store.OutgoingUser) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM outgoing_user_networks WHERE user_name = $1`, u.Name); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outgoing_user_grants WHERE user_name = $1`, u.Name); err != nil {
		return err
	}
	for _, p := range u.Networks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outgoing_user_networks (user_name, prefix) VALUES ($1, $2)`, u.Name, p.String()); err != nil {
			return err
		}
	}
	for _, g := range u.GrantedDomains {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outgoing_user_grants (user_name, domain) VALUES ($1, $2)`, u.Name, g); err != nil {
			return err
		}
	}
	return nil
}

// AddUser implements store.Users.
func (d *DB) AddUser(ctx context.Context, u store.OutgoingUser) (store.OutgoingUser, error) {
	u, err := u.Normalize()
	if err != nil {
		return store.OutgoingUser{}, err
	}
	var out store.OutgoingUser
	now := d.stamp()
	err = d.write(ctx, func(tx *sql.Tx) error {
		if ok, err := domainExists(ctx, tx, u.Domain); err != nil {
			return err
		} else if !ok {
			return store.Explain(store.ErrNotFound, "Domain %s was not found.", u.Domain)
		}
		if err := requireDomains(ctx, tx, "granted_domains", u.GrantedDomains); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM outgoing_users WHERE name = $1`, u.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.Explain(store.ErrExists, "User %s already exists (user names are unique across dkimd).", u.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outgoing_users (`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			u.Name, u.Domain, string(u.Auth), u.PasswordHash, u.IdentityHeader, (u.Enabled),
			u.Selector, (u.AllowForeignFrom), now, now); err != nil {
			return err
		}
		if err := writeUserLists(ctx, tx, u); err != nil {
			return err
		}
		out, err = d.getUser(ctx, tx, u.Name)
		return err
	})
	if err != nil {
		return store.OutgoingUser{}, dbErr("add user", err)
	}
	return out, nil
}

// getUserByName reads a user from the database.
func (d *DB) getUserByName(ctx context.Context, name string) (store.OutgoingUser, error) {
	n, err := store.NormalizeName(name)
	if err != nil {
		return store.OutgoingUser{}, fmt.Errorf("%w: user: %v", store.ErrNotFound, err)
	}
	out, err := d.getUser(ctx, d.db, n)
	if err != nil {
		return store.OutgoingUser{}, dbErr("get user", err)
	}
	return out, nil
}

// ListUsers implements store.Users.
func (d *DB) ListUsers(ctx context.Context, domain string) ([]store.OutgoingUser, error) {
	q, args := `SELECT `+userCols+` FROM outgoing_users ORDER BY name`, []any{}
	if domain != "" {
		dom, err := mailaddr.ParseDomain(domain)
		if err != nil {
			return nil, nil
		}
		q, args = `SELECT `+userCols+` FROM outgoing_users WHERE domain = $1 ORDER BY name`, []any{dom}
	}
	var out []store.OutgoingUser
	err := d.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = listUsers(ctx, tx, q, args...)
		return err
	})
	if err != nil {
		return nil, dbErr("list users", err)
	}
	return out, nil
}

func listUsers(ctx context.Context, q querier, query string, args ...any) ([]store.OutgoingUser, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []store.OutgoingUser
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := loadUserLists(ctx, q, out); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateUser implements store.Users.
func (d *DB) UpdateUser(ctx context.Context, u store.OutgoingUser) (store.OutgoingUser, error) {
	u, err := u.Normalize()
	if err != nil {
		return store.OutgoingUser{}, err
	}
	var out store.OutgoingUser
	err = d.write(ctx, func(tx *sql.Tx) error {
		if ok, err := domainExists(ctx, tx, u.Domain); err != nil {
			return err
		} else if !ok {
			return store.Invalid("domain", "domain %s does not exist", u.Domain)
		}
		if err := requireDomains(ctx, tx, "granted_domains", u.GrantedDomains); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE outgoing_users SET domain = $1, auth = $2, password_hash = $3, identity_header = $4,
enabled = $5, selector = $6, allow_foreign_from = $7, updated = $8 WHERE name = $9`,
			u.Domain, string(u.Auth), u.PasswordHash, u.IdentityHeader, (u.Enabled),
			u.Selector, (u.AllowForeignFrom), d.stamp(), u.Name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.Explain(store.ErrNotFound, "User %s was not found.", u.Name)
		}
		if err := writeUserLists(ctx, tx, u); err != nil {
			return err
		}
		out, err = d.getUser(ctx, tx, u.Name)
		return err
	})
	if err != nil {
		return store.OutgoingUser{}, dbErr("update user", err)
	}
	return out, nil
}

// RemoveUser implements store.Users.
func (d *DB) RemoveUser(ctx context.Context, name string) error {
	n, err := store.NormalizeName(name)
	if err != nil {
		return fmt.Errorf("%w: user: %v", store.ErrNotFound, err)
	}
	err = d.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM outgoing_users WHERE name = $1`, n)
		if err != nil {
			return err
		}
		if c, err := res.RowsAffected(); err != nil {
			return err
		} else if c == 0 {
			return store.Explain(store.ErrNotFound, "User %s was not found.", n)
		}
		return nil
	})
	return dbErr("remove user", err)
}

// userByIP is UserByIP in the database. The match is PostgreSQL's (cidr >>=
// inet, which never matches across address families, as
// store.MatchNetworks): the users whose most specific network holding addr
// is the most specific of all, read with their lists in the same
// statement, so the user read is the one that won.
func (d *DB) userByIP(ctx context.Context, addr netip.Addr) (store.OutgoingUser, error) {
	if !addr.IsValid() {
		return store.OutgoingUser{}, fmt.Errorf("%w: no user for an invalid address", store.ErrNotFound)
	}
	addr = addr.Unmap().WithZone("")
	rows, err := d.db.QueryContext(ctx, `WITH m AS (
	SELECT n.user_name, max(masklen(n.prefix::cidr)) AS bits
	FROM outgoing_user_networks n JOIN outgoing_users o ON o.name = n.user_name
	WHERE o.auth IN ($2, $3) AND n.prefix::cidr >>= $1::inet
	GROUP BY n.user_name)
`+userWithLists+` WHERE u.name IN (SELECT user_name FROM m WHERE bits = (SELECT max(bits) FROM m)) ORDER BY u.name`,
		addr.String(), string(store.AuthIP), string(store.AuthReauth))
	if err != nil {
		return store.OutgoingUser{}, dbErr("user by ip", err)
	}
	defer rows.Close()
	var found []store.OutgoingUser
	for rows.Next() {
		u, err := scanUserWithLists(rows)
		if err != nil {
			return store.OutgoingUser{}, dbErr("user by ip", err)
		}
		found = append(found, u)
	}
	if err := rows.Err(); err != nil {
		return store.OutgoingUser{}, dbErr("user by ip", err)
	}
	switch len(found) {
	case 0:
		return store.OutgoingUser{}, fmt.Errorf("%w: no user for address %s", store.ErrNotFound, addr)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, u := range found {
		names[i] = u.Name
	}
	return store.OutgoingUser{}, store.Explain(store.ErrConflict, "Address %s is claimed by users %v with equally specific networks.", addr, names)
}

// NetworkClaims implements store.Users.
func (d *DB) NetworkClaims(ctx context.Context) ([]store.NetworkClaim, error) {
	var out []store.NetworkClaim
	err := d.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT n.user_name, u.domain, n.prefix FROM outgoing_user_networks n
JOIN outgoing_users u ON u.name = n.user_name WHERE u.auth IN ($1, $2) ORDER BY n.user_name`, string(store.AuthIP), string(store.AuthReauth))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.NetworkClaim
			var prefix string
			if err := rows.Scan(&c.User, &c.Domain, &prefix); err != nil {
				return err
			}
			if c.Network, err = parseNetwork(c.User, prefix); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, dbErr("network claims", err)
	}
	// The text order of the column is not the order of addresses.
	slices.SortStableFunc(out, func(a, b store.NetworkClaim) int {
		if a.User != b.User {
			return strings.Compare(a.User, b.User)
		}
		if c := a.Network.Addr().Compare(b.Network.Addr()); c != 0 {
			return c
		}
		return a.Network.Bits() - b.Network.Bits()
	})
	return out, nil
}
