package sqlite

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

func scanUser(row interface{ Scan(...any) error }) (store.OutgoingUser, error) {
	var u store.OutgoingUser
	var auth string
	var enabled, foreign int
	var created, updated int64
	if err := row.Scan(&u.Name, &u.Domain, &auth, &u.PasswordHash, &u.IdentityHeader, &enabled,
		&u.Selector, &foreign, &created, &updated); err != nil {
		return u, err
	}
	u.Auth = store.AuthKind(auth)
	u.Enabled, u.AllowForeignFrom = enabled == 1, foreign == 1
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
		where, args = ` WHERE user = ?`, []any{users[0].Name}
	}
	rows, err := q.QueryContext(ctx, `SELECT user, prefix FROM outgoing_user_networks`+where+` ORDER BY user`, args...)
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
	rows, err = q.QueryContext(ctx, `SELECT user, domain FROM outgoing_user_grants`+where+` ORDER BY user, domain`, args...)
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

// getUser reads a user in tx.
func (d *DB) getUser(ctx context.Context, tx *sql.Tx, name string) (store.OutgoingUser, error) {
	u, err := scanUser(tx.StmtContext(ctx, d.stmts.user).QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, store.Explain(store.ErrNotFound, "User %s was not found.", name)
	}
	if err != nil {
		return u, err
	}
	rows, err := tx.StmtContext(ctx, d.stmts.userNets).QueryContext(ctx, name)
	if err != nil {
		return u, err
	}
	for rows.Next() {
		var prefix string
		if err := rows.Scan(&prefix); err != nil {
			rows.Close()
			return u, err
		}
		p, err := parseNetwork(name, prefix)
		if err != nil {
			rows.Close()
			return u, err
		}
		u.Networks = append(u.Networks, p)
	}
	if err := rows.Err(); err != nil {
		return u, err
	}
	sortNetworks(u.Networks)
	rows, err = tx.StmtContext(ctx, d.stmts.userGrants).QueryContext(ctx, name)
	if err != nil {
		return u, err
	}
	for rows.Next() {
		var dom string
		if err := rows.Scan(&dom); err != nil {
			rows.Close()
			return u, err
		}
		u.GrantedDomains = append(u.GrantedDomains, dom)
	}
	return u, rows.Err()
}

// writeUserLists replaces a user's networks and grants.
func writeUserLists(ctx context.Context, tx *sql.Tx, u store.OutgoingUser) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM outgoing_user_networks WHERE user = ?`, u.Name); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outgoing_user_grants WHERE user = ?`, u.Name); err != nil {
		return err
	}
	for _, p := range u.Networks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outgoing_user_networks (user, prefix) VALUES (?, ?)`, u.Name, p.String()); err != nil {
			return err
		}
	}
	for _, g := range u.GrantedDomains {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outgoing_user_grants (user, domain) VALUES (?, ?)`, u.Name, g); err != nil {
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
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM outgoing_users WHERE name = ?`, u.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.Explain(store.ErrExists, "User %s already exists (user names are unique across dkimd).", u.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outgoing_users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.Name, u.Domain, string(u.Auth), u.PasswordHash, u.IdentityHeader, boolInt(u.Enabled),
			u.Selector, boolInt(u.AllowForeignFrom), now, now); err != nil {
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

// GetUser implements store.Users.
func (d *DB) GetUser(ctx context.Context, name string) (store.OutgoingUser, error) {
	return cached(ctx, d, "user\x00"+name, store.CloneUser,
		func() (store.OutgoingUser, error) { return d.getUserByName(ctx, name) })
}

func (d *DB) getUserByName(ctx context.Context, name string) (store.OutgoingUser, error) {
	n, err := store.NormalizeName(name)
	if err != nil {
		return store.OutgoingUser{}, fmt.Errorf("%w: user: %v", store.ErrNotFound, err)
	}
	var out store.OutgoingUser
	err = d.read(ctx, func(tx *sql.Tx) error {
		out, err = d.getUser(ctx, tx, n)
		return err
	})
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
		q, args = `SELECT `+userCols+` FROM outgoing_users WHERE domain = ? ORDER BY name`, []any{dom.String()}
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
		res, err := tx.ExecContext(ctx, `UPDATE outgoing_users SET domain = ?, auth = ?, password_hash = ?, identity_header = ?,
enabled = ?, selector = ?, allow_foreign_from = ?, updated = ? WHERE name = ?`,
			u.Domain, string(u.Auth), u.PasswordHash, u.IdentityHeader, boolInt(u.Enabled),
			u.Selector, boolInt(u.AllowForeignFrom), d.stamp(), u.Name)
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
		res, err := tx.ExecContext(ctx, `DELETE FROM outgoing_users WHERE name = ?`, n)
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

// UserByIP implements store.Users. Users with networks are few (servers,
// not people), so the match is done here rather than in SQL, which has no
// prefix type: it reads the networks of every user found by address, and
// only the user that wins.
func (d *DB) UserByIP(ctx context.Context, addr netip.Addr) (store.OutgoingUser, error) {
	return cached(ctx, d, "ip\x00"+addr.String(), store.CloneUser,
		func() (store.OutgoingUser, error) { return d.userByIP(ctx, addr) })
}

func (d *DB) userByIP(ctx context.Context, addr netip.Addr) (store.OutgoingUser, error) {
	if !addr.IsValid() {
		return store.OutgoingUser{}, fmt.Errorf("%w: no user for an invalid address", store.ErrNotFound)
	}
	addr = addr.Unmap().WithZone("")
	var out store.OutgoingUser
	err := d.read(ctx, func(tx *sql.Tx) error {
		best, err := d.usersByIP(ctx, tx, addr)
		if err != nil {
			return err
		}
		switch len(best) {
		case 0:
			return fmt.Errorf("%w: no user for address %s", store.ErrNotFound, addr)
		case 1:
			// The same snapshot as the match: the user read is the one that
			// won.
			out, err = d.getUser(ctx, tx, best[0])
			return err
		}
		return store.Explain(store.ErrConflict, "Address %s is claimed by users %v with equally specific networks.", addr, best)
	})
	if err != nil {
		return store.OutgoingUser{}, dbErr("user by ip", err)
	}
	return out, nil
}

// usersByIP gives the names, sorted, of the users found by address whose
// most specific network holding addr is the most specific of all.
func (d *DB) usersByIP(ctx context.Context, tx *sql.Tx, addr netip.Addr) ([]string, error) {
	rows, err := tx.StmtContext(ctx, d.stmts.addressNets).QueryContext(ctx, string(store.AuthIP), string(store.AuthReauth))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var best []string
	bestBits := -1
	// Rows come grouped by user: each user's networks are matched together
	// when the next user's start, as store.MatchNetworks defines.
	var user string
	var nets []netip.Prefix
	match := func() {
		p, ok := store.MatchNetworks(nets, addr)
		switch {
		case !ok || p.Bits() < bestBits:
		case p.Bits() > bestBits:
			best, bestBits = []string{user}, p.Bits()
		default:
			best = append(best, user)
		}
	}
	for rows.Next() {
		var name, prefix string
		if err := rows.Scan(&name, &prefix); err != nil {
			return nil, err
		}
		p, err := parseNetwork(name, prefix)
		if err != nil {
			return nil, err
		}
		if name != user {
			match()
			user, nets = name, nets[:0]
		}
		nets = append(nets, p)
	}
	// A read cut short must not leave a broader network to win.
	if err := rows.Err(); err != nil {
		return nil, err
	}
	match()
	return best, nil
}

// NetworkClaims implements store.Users.
func (d *DB) NetworkClaims(ctx context.Context) ([]store.NetworkClaim, error) {
	var out []store.NetworkClaim
	err := d.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT n.user, u.domain, n.prefix FROM outgoing_user_networks n
JOIN outgoing_users u ON u.name = n.user WHERE u.auth IN (?, ?) ORDER BY n.user`, string(store.AuthIP), string(store.AuthReauth))
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
