package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dkimd/dkimd/internal/store"
)

const accountCols = `name, role, password_hash, enabled, created, updated`

func scanAccount(row interface{ Scan(...any) error }) (store.Account, error) {
	var a store.Account
	var role string
	var enabled bool
	var created, updated int64
	if err := row.Scan(&a.Name, &role, &a.PasswordHash, &enabled, &created, &updated); err != nil {
		return a, err
	}
	a.Role, a.Enabled = store.Role(role), enabled
	a.Created, a.Updated = fromStamp(created), fromStamp(updated)
	return a, nil
}

func loadAccountDomains(ctx context.Context, q querier, a *store.Account) error {
	rows, err := q.QueryContext(ctx, `SELECT domain FROM account_domains WHERE account = $1 ORDER BY domain`, a.Name)
	if err != nil {
		return err
	}
	for rows.Next() {
		var dom string
		if err := rows.Scan(&dom); err != nil {
			rows.Close()
			return err
		}
		a.Domains = append(a.Domains, dom)
	}
	return rows.Err()
}

func getAccount(ctx context.Context, q querier, name string) (store.Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.Explain(store.ErrNotFound, "Account %s was not found.", name)
	}
	if err != nil {
		return a, err
	}
	return a, loadAccountDomains(ctx, q, &a)
}

func writeAccountDomains(ctx context.Context, tx *sql.Tx, a store.Account) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM account_domains WHERE account = $1`, a.Name); err != nil {
		return err
	}
	for _, dom := range a.Domains {
		if _, err := tx.ExecContext(ctx, `INSERT INTO account_domains (account, domain) VALUES ($1, $2)`, a.Name, dom); err != nil {
			return err
		}
	}
	return nil
}

// AddAccount implements store.Accounts.
func (d *DB) AddAccount(ctx context.Context, a store.Account) (store.Account, error) {
	a, err := a.Normalize()
	if err != nil {
		return store.Account{}, err
	}
	var out store.Account
	now := d.stamp()
	err = d.write(ctx, func(tx *sql.Tx) error {
		if err := requireDomains(ctx, tx, "domains", a.Domains); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE name = $1`, a.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.Explain(store.ErrExists, "Account %s already exists.", a.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			a.Name, string(a.Role), a.PasswordHash, (a.Enabled), now, now); err != nil {
			return err
		}
		if err := writeAccountDomains(ctx, tx, a); err != nil {
			return err
		}
		out, err = getAccount(ctx, tx, a.Name)
		return err
	})
	if err != nil {
		return store.Account{}, dbErr("add account", err)
	}
	return out, nil
}

// GetAccount implements store.Accounts.
func (d *DB) GetAccount(ctx context.Context, name string) (store.Account, error) {
	n, err := store.NormalizeName(name)
	if err != nil {
		return store.Account{}, fmt.Errorf("%w: account: %v", store.ErrNotFound, err)
	}
	var out store.Account
	err = d.read(ctx, func(tx *sql.Tx) error {
		out, err = getAccount(ctx, tx, n)
		return err
	})
	if err != nil {
		return store.Account{}, dbErr("get account", err)
	}
	return out, nil
}

// ListAccounts implements store.Accounts.
func (d *DB) ListAccounts(ctx context.Context) ([]store.Account, error) {
	var out []store.Account
	err := d.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY name`)
		if err != nil {
			return err
		}
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, a)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			if err := loadAccountDomains(ctx, tx, &out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, dbErr("list accounts", err)
	}
	return out, nil
}

// UpdateAccount implements store.Accounts.
func (d *DB) UpdateAccount(ctx context.Context, a store.Account) (store.Account, error) {
	a, err := a.Normalize()
	if err != nil {
		return store.Account{}, err
	}
	var out store.Account
	err = d.write(ctx, func(tx *sql.Tx) error {
		if err := requireDomains(ctx, tx, "domains", a.Domains); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET role = $1, password_hash = $2, enabled = $3, updated = $4 WHERE name = $5`,
			string(a.Role), a.PasswordHash, (a.Enabled), d.stamp(), a.Name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.Explain(store.ErrNotFound, "Account %s was not found.", a.Name)
		}
		if err := writeAccountDomains(ctx, tx, a); err != nil {
			return err
		}
		out, err = getAccount(ctx, tx, a.Name)
		return err
	})
	if err != nil {
		return store.Account{}, dbErr("update account", err)
	}
	return out, nil
}

// RemoveAccount implements store.Accounts.
func (d *DB) RemoveAccount(ctx context.Context, name string) error {
	n, err := store.NormalizeName(name)
	if err != nil {
		return fmt.Errorf("%w: account: %v", store.ErrNotFound, err)
	}
	err = d.write(ctx, func(tx *sql.Tx) error {
		// Domains and tokens go by ON DELETE CASCADE.
		res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE name = $1`, n)
		if err != nil {
			return err
		}
		if c, err := res.RowsAffected(); err != nil {
			return err
		} else if c == 0 {
			return store.Explain(store.ErrNotFound, "Account %s was not found.", n)
		}
		return nil
	})
	return dbErr("remove account", err)
}

const tokenCols = `id, account, kind, label, hash, created, expires`

func scanToken(row interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var kind string
	var created int64
	var expires sql.NullInt64
	if err := row.Scan(&t.ID, &t.Account, &kind, &t.Label, &t.Hash, &created, &expires); err != nil {
		return t, err
	}
	t.Kind = store.TokenKind(kind)
	t.Created, t.Expires = fromStamp(created), fromNullStamp(expires)
	return t, nil
}

// AddToken implements store.Accounts.
func (d *DB) AddToken(ctx context.Context, t store.Token) (store.Token, error) {
	t, err := t.Normalize()
	if err != nil {
		return store.Token{}, err
	}
	now := d.stamp()
	err = d.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE name = $1`, t.Account).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.Explain(store.ErrNotFound, "Account %s was not found.", t.Account)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE hash = $1`, t.Hash).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: token", store.ErrExists)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO tokens (account, kind, label, hash, created, expires)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			t.Account, string(t.Kind), t.Label, t.Hash, now, toNullStamp(t.Expires)).Scan(&t.ID)
	})
	if err != nil {
		return store.Token{}, dbErr("add token", err)
	}
	t.Created = fromStamp(now)
	if !t.Expires.IsZero() {
		t.Expires = fromStamp(t.Expires.UnixNano())
	}
	return t, nil
}

// AccountByToken implements store.Accounts.
func (d *DB) AccountByToken(ctx context.Context, hash []byte) (store.Account, store.Token, error) {
	var a store.Account
	var t store.Token
	err := d.read(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1 AND (expires IS NULL OR expires > $2)`,
			hash, d.stamp()))
		if errors.Is(err, sql.ErrNoRows) {
			return store.Explain(store.ErrNotFound, "The token was not found.")
		}
		if err != nil {
			return err
		}
		a, err = getAccount(ctx, tx, t.Account)
		if err != nil {
			return err
		}
		if !a.Enabled {
			return store.Explain(store.ErrNotFound, "The token was not found.")
		}
		return nil
	})
	if err != nil {
		return store.Account{}, store.Token{}, dbErr("account by token", err)
	}
	return a, t, nil
}

// ListTokens implements store.Accounts.
func (d *DB) ListTokens(ctx context.Context, account string) ([]store.Token, error) {
	n, err := store.NormalizeName(account)
	if err != nil {
		return nil, fmt.Errorf("%w: account: %v", store.ErrNotFound, err)
	}
	var out []store.Token
	err = d.read(ctx, func(tx *sql.Tx) error {
		var c int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE name = $1`, n).Scan(&c); err != nil {
			return err
		}
		if c == 0 {
			return store.Explain(store.ErrNotFound, "Account %s was not found.", n)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE account = $1 ORDER BY id DESC`, n)
		if err != nil {
			return err
		}
		for rows.Next() {
			t, err := scanToken(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, t)
		}
		return rows.Close()
	})
	if err != nil {
		return nil, dbErr("list tokens", err)
	}
	return out, nil
}

// RemoveToken implements store.Accounts.
func (d *DB) RemoveToken(ctx context.Context, account string, id int64) error {
	n, err := store.NormalizeName(account)
	if err != nil {
		return fmt.Errorf("%w: account: %v", store.ErrNotFound, err)
	}
	err = d.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE account = $1 AND id = $2`, n, id)
		if err != nil {
			return err
		}
		if c, err := res.RowsAffected(); err != nil {
			return err
		} else if c == 0 {
			return store.Explain(store.ErrNotFound, "Token %d of account %s was not found.", id, n)
		}
		return nil
	})
	return dbErr("remove token", err)
}

// RemoveExpiredTokens implements store.Accounts.
func (d *DB) RemoveExpiredTokens(ctx context.Context) (int, error) {
	var n int64
	err := d.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE expires IS NOT NULL AND expires <= $1`, d.stamp())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, dbErr("remove expired tokens", err)
	}
	return int(n), nil
}
