package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dkimd/dkimd/internal/store"
)

// MasterKeyCheck implements store.MasterKeyChecks.
func (d *DB) MasterKeyCheck(ctx context.Context) ([]byte, error) {
	var v []byte
	err := d.db.QueryRowContext(ctx, `SELECT value FROM master_key_check WHERE id = 1`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: master key check value", store.ErrNotFound)
	}
	if err != nil {
		return nil, dbErr("master key check", err)
	}
	return v, nil
}

// SetMasterKeyCheck implements store.MasterKeyChecks. The read and the
// write share one write transaction, so of two processes storing different
// values one wins and the other gets ErrConflict.
func (d *DB) SetMasterKeyCheck(ctx context.Context, check []byte) error {
	if len(check) == 0 {
		return store.Invalid("master_key_check", "empty")
	}
	return d.write(ctx, func(tx *sql.Tx) error {
		var old []byte
		err := tx.QueryRowContext(ctx, `SELECT value FROM master_key_check WHERE id = 1`).Scan(&old)
		switch {
		case err == nil && bytes.Equal(old, check):
			return nil
		case err == nil:
			return store.Explain(store.ErrConflict, "Another master key check value is stored.")
		case !errors.Is(err, sql.ErrNoRows):
			return dbErr("master key check", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO master_key_check (id, value, created) VALUES (1, $1, $2)`, check, d.stamp())
		return dbErr("master key check", err)
	})
}
