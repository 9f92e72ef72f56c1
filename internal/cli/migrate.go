package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/dataopen"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/postgres"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// migrateCounts says what dkimd migrate copied.
type migrateCounts struct {
	Domains    int `json:"domains"`
	Keys       int `json:"keys"`
	Users      int `json:"users"`
	Accounts   int `json:"accounts"`
	Tokens     int `json:"tokens"`
	Audit      int `json:"audit_entries"`
	DNSChecks  int `json:"dns_checks"`
	QueuedLeft int `json:"queued_not_copied"`
}

// runMigrate copies a SQLite data directory into an empty PostgreSQL
// database, in one transaction: domains, keys (still sealed: the master
// key is neither needed nor touched), users, accounts, tokens, the audit
// log, the DNS check history and the master key's check value. The mail
// queue is not copied: the old dkimd delivers what it holds.
func runMigrate(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("migrate", e)
	from := fs.String("from", "", "the SQLite data directory to copy (it holds dkimd.db)")
	to := fs.String("to", e.getenv("DKIMD_DATABASE"), "the empty PostgreSQL database, postgres://... (default $DKIMD_DATABASE)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if *from == "" || !postgres.IsURL(*to) {
		return usagef("usage: dkimd migrate --from DIR --to postgres://USER@HOST/DBNAME")
	}
	dbPath := datadir.New(*from).Database()
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	src, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	if err := src.Check(ctx); err != nil {
		return fmt.Errorf("migrate: the SQLite database fails its check, nothing was copied: %w", err)
	}
	dst, err := postgres.Open(ctx, *to, postgres.Options{})
	if err != nil {
		return err
	}
	defer dst.Close()
	var n migrateCounts
	err = dst.Import(ctx, func(im *postgres.Importer) error { return copyStore(ctx, src, im, &n) })
	if errors.Is(err, postgres.ErrNotEmpty) {
		return fmt.Errorf("migrate: %s: %w; dkimd migrate only fills a new database and never merges: nothing was copied", dataopen.RedactURL(*to), err)
	}
	if err != nil {
		return fmt.Errorf("migrate: nothing was copied: %w", err)
	}
	n.QueuedLeft = spoolCount(filepath.Join(datadir.New(*from).Spool(), "msg"))
	if *asJSON {
		return writeJSON(e.Stdout, n)
	}
	fmt.Fprintf(e.Stdout, "copied %d domains, %d keys (sealed as they were), %d users, %d accounts, %d tokens, %d audit entries, %d DNS checks to %s\n",
		n.Domains, n.Keys, n.Users, n.Accounts, n.Tokens, n.Audit, n.DNSChecks, dataopen.RedactURL(*to))
	fmt.Fprintf(e.Stdout, "the mail queue is not copied (%d messages in %s): let the old dkimd deliver them before it stops (dkimd queue list --data %s)\n",
		n.QueuedLeft, datadir.New(*from).Spool(), *from)
	fmt.Fprintln(e.Stdout, "start every node with --database and the master key of the old data directory (its master.key file or $DKIMD_MASTER_KEY)")
	return nil
}

// copyStore reads everything src keeps and loads it with im, parents
// before what refers to them.
func copyStore(ctx context.Context, src store.Store, im *postgres.Importer, n *migrateCounts) error {
	if v, err := src.MasterKeyCheck(ctx); err == nil {
		if err := im.MasterKeyCheck(v); err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	domains, err := src.ListDomains(ctx)
	if err != nil {
		return err
	}
	for _, d := range domains {
		if err := im.Domain(d); err != nil {
			return err
		}
	}
	n.Domains = len(domains)
	ks, err := src.ListKeys(ctx, store.KeyFilter{})
	if err != nil {
		return err
	}
	slices.SortFunc(ks, func(a, b store.Key) int { return int(a.ID - b.ID) }) // a key replaces an older one
	for _, k := range ks {
		var sealed []byte
		if !k.Location.PKCS11() { // a token key's private half stays in the token
			if sealed, err = src.SealedKey(ctx, k.ID); err != nil {
				return fmt.Errorf("key %s: %w", k.RecordName(), err)
			}
		}
		if err := im.Key(k, sealed); err != nil {
			return err
		}
		checks, err := src.ListDNSChecks(ctx, store.DNSCheckFilter{KeyID: k.ID, Limit: store.MaxDNSCheckLimit})
		if err != nil {
			return err
		}
		slices.Reverse(checks)
		for _, c := range checks {
			if err := im.DNSCheck(c); err != nil {
				return err
			}
		}
		n.DNSChecks += len(checks)
	}
	n.Keys = len(ks)
	users, err := src.ListUsers(ctx, "")
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := im.User(u); err != nil {
			return err
		}
	}
	n.Users = len(users)
	accounts, err := src.ListAccounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if err := im.Account(a); err != nil {
			return err
		}
		ts, err := src.ListTokens(ctx, a.Name)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if err := im.Token(t); err != nil {
				return err
			}
		}
		n.Tokens += len(ts)
	}
	n.Accounts = len(accounts)
	// The audit log, newest first a page at a time, loaded oldest first.
	var entries []store.AuditEntry
	for before := int64(0); ; {
		page, err := src.ListAudit(ctx, store.AuditFilter{Before: before, Limit: store.MaxAuditLimit})
		if err != nil {
			return err
		}
		entries = append(entries, page...)
		if len(page) < store.MaxAuditLimit {
			break
		}
		before = page[len(page)-1].ID
	}
	slices.Reverse(entries)
	for _, e := range entries {
		if err := im.Entry(e); err != nil {
			return err
		}
	}
	n.Audit = len(entries)
	return nil
}

// spoolCount counts the messages in a spool's msg directory, best effort:
// the files at mode 0600 (those at 0200 are spares, not messages).
func spoolCount(dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range es {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o600 {
			n++
		}
	}
	return n
}
