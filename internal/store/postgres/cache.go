package postgres

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dkimd/dkimd/internal/store"
)

// storeChannel is the LISTEN/NOTIFY channel every store write notifies at
// its commit, so that every node drops what it cached.
const storeChannel = "dkimd_store"

// CacheReads turns on the read cache of the relay's per-message reads
// (UserByIP, GetUser, GetDomain, ActiveKeys, GetKey) for the life of ctx:
// it listens for the notification every store write sends at its commit,
// and caches only while it is connected. For serve; short-lived commands
// read the database each time.
func (d *DB) CacheReads(ctx context.Context, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &store.ReadCache{}
	d.cache.Store(c)
	go func() {
		for backoff := 100 * time.Millisecond; ctx.Err() == nil; {
			err := d.listenStore(ctx, c)
			c.SetLive(false)
			if ctx.Err() != nil {
				return
			}
			log.Warn("store_cache_listen_lost", "err", err, "retry_in", backoff.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
}

func (d *DB) listenStore(ctx context.Context, c *store.ReadCache) error {
	conn, err := pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+storeChannel); err != nil {
		return err
	}
	// Writes made while no one listened are not in the cache: it starts
	// empty, under a new generation.
	c.SetLive(true)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		c.Invalidate()
	}
}

// cached runs read through the read cache, if CacheReads turned it on.
func cached[T any](d *DB, key string, clone func(T) T, read func() (T, error)) (T, error) {
	return store.Cached(d.cache.Load(), key, clone, read)
}

// GetDomain implements store.Domains.
func (d *DB) GetDomain(ctx context.Context, name string) (store.Domain, error) {
	return cached(d, "domain\x00"+name, func(v store.Domain) store.Domain { return v },
		func() (store.Domain, error) { return d.getDomain(ctx, name) })
}

// GetKey implements store.Keys.
func (d *DB) GetKey(ctx context.Context, id int64) (store.Key, error) {
	return cached(d, "key\x00"+strconv.FormatInt(id, 10), store.CloneKey,
		func() (store.Key, error) { return d.getKeyByID(ctx, id) })
}

// ActiveKeys implements store.Keys.
func (d *DB) ActiveKeys(ctx context.Context, domain string) ([]store.Key, error) {
	return cached(d, "active\x00"+domain, store.CloneKeys, func() ([]store.Key, error) { return d.activeKeys(ctx, domain) })
}

// GetUser implements store.Users.
func (d *DB) GetUser(ctx context.Context, name string) (store.OutgoingUser, error) {
	return cached(d, "user\x00"+name, store.CloneUser, func() (store.OutgoingUser, error) { return d.getUserByName(ctx, name) })
}

// UserByIP implements store.Users.
func (d *DB) UserByIP(ctx context.Context, addr netip.Addr) (store.OutgoingUser, error) {
	return cached(d, "ip\x00"+addr.String(), store.CloneUser, func() (store.OutgoingUser, error) { return d.userByIP(ctx, addr) })
}
