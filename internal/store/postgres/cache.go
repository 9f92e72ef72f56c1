package postgres

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dkimd/dkimd/internal/store"
)

// storeChannel is the LISTEN/NOTIFY channel every store write notifies at
// its commit, so that every node drops what it cached.
const storeChannel = "dkimd_store"

// cacheTTL bounds how long a cached read is used even without a write:
// a safety net, since invalidation comes by notification.
const cacheTTL = 30 * time.Second

// maxCached bounds the cache; when full it starts over.
const maxCached = 10000

// readCache keeps the results of the reads the relay makes for every
// message (the user by address or name, the From domain, its active keys,
// each signing key) until any node writes to the store: every write
// notifies storeChannel at its commit, and every node's listener then
// drops the whole cache. It is used only while the listener is connected;
// without it every read goes to the database. A write is thus seen on every
// node as soon as its notification arrives (milliseconds), and on the
// writing node at once.
type readCache struct {
	gen  atomic.Uint64
	live atomic.Bool

	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	gen uint64
	at  time.Time
	v   any
}

// start gives the generation to store a read under, and whether to cache
// at all. Take it before the query: a write committed meanwhile moves the
// generation on, and the entry is then never used.
func (c *readCache) start() (uint64, bool) {
	if c == nil || !c.live.Load() {
		return 0, false
	}
	return c.gen.Load(), true
}

func (c *readCache) get(key string) (any, bool) {
	if c == nil || !c.live.Load() {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || e.gen != c.gen.Load() || time.Since(e.at) > cacheTTL {
		return nil, false
	}
	return e.v, true
}

func (c *readCache) put(key string, gen uint64, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen.Load() {
		return
	}
	if c.m == nil || len(c.m) >= maxCached {
		c.m = make(map[string]cacheEntry)
	}
	c.m[key] = cacheEntry{gen: gen, at: time.Now(), v: v}
}

// invalidate drops everything cached.
func (c *readCache) invalidate() {
	if c == nil {
		return
	}
	c.gen.Add(1)
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// CacheReads turns on the read cache of the relay's per-message reads
// (UserByIP, GetUser, GetDomain, ActiveKeys, GetKey) for the life of ctx:
// it listens for the notification every store write sends at its commit,
// and caches only while it is connected. For serve; short-lived commands
// read the database each time.
func (d *DB) CacheReads(ctx context.Context, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &readCache{}
	d.cache.Store(c)
	go func() {
		for backoff := 100 * time.Millisecond; ctx.Err() == nil; {
			err := d.listenStore(ctx, c)
			c.live.Store(false)
			c.invalidate()
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

func (d *DB) listenStore(ctx context.Context, c *readCache) error {
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
	c.invalidate()
	c.live.Store(true)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		c.invalidate()
	}
}

// cached runs read through the cache under key; v is cloned by clone on
// the way in and out, so no caller shares a slice with another.
func cached[T any](d *DB, key string, clone func(T) T, read func() (T, error)) (T, error) {
	c := d.cache.Load()
	if v, ok := c.get(key); ok {
		return clone(v.(T)), nil
	}
	gen, ok := c.start()
	v, err := read()
	if err == nil && ok {
		c.put(key, gen, clone(v))
	}
	return v, err
}

// GetDomain implements store.Domains.
func (d *DB) GetDomain(ctx context.Context, name string) (store.Domain, error) {
	return cached(d, "domain\x00"+name, func(v store.Domain) store.Domain { return v },
		func() (store.Domain, error) { return d.getDomain(ctx, name) })
}

// GetKey implements store.Keys.
func (d *DB) GetKey(ctx context.Context, id int64) (store.Key, error) {
	return cached(d, "key\x00"+strconv.FormatInt(id, 10), cloneKey,
		func() (store.Key, error) { return d.getKeyByID(ctx, id) })
}

// ActiveKeys implements store.Keys.
func (d *DB) ActiveKeys(ctx context.Context, domain string) ([]store.Key, error) {
	return cached(d, "active\x00"+domain, func(ks []store.Key) []store.Key {
		out := make([]store.Key, len(ks))
		for i, k := range ks {
			out[i] = cloneKey(k)
		}
		return out
	}, func() ([]store.Key, error) { return d.activeKeys(ctx, domain) })
}

// GetUser implements store.Users.
func (d *DB) GetUser(ctx context.Context, name string) (store.OutgoingUser, error) {
	return cached(d, "user\x00"+name, cloneUser, func() (store.OutgoingUser, error) { return d.getUserByName(ctx, name) })
}

// UserByIP implements store.Users.
func (d *DB) UserByIP(ctx context.Context, addr netip.Addr) (store.OutgoingUser, error) {
	return cached(d, "ip\x00"+addr.String(), cloneUser, func() (store.OutgoingUser, error) { return d.userByIP(ctx, addr) })
}

func cloneKey(k store.Key) store.Key {
	k.PublicKey = slices.Clone(k.PublicKey)
	return k
}

func cloneUser(u store.OutgoingUser) store.OutgoingUser {
	u.Networks = slices.Clone(u.Networks)
	u.GrantedDomains = slices.Clone(u.GrantedDomains)
	return u
}
