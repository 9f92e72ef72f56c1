package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ReadCache keeps the results of the reads the relay and the milter make
// for every message (the user by address or name, the From domain, its
// active keys, each signing key) until the store changes. A backend says
// when that is: PostgreSQL by a notification every write sends at its
// commit, SQLite by the database's data version, which any commit of any
// connection or process moves on. A backend turns the cache on (SetLive)
// only while it can see every change; otherwise every read goes to the
// database.
//
// The zero value is ready and off; a nil *ReadCache is off for good.
type ReadCache struct {
	gen  atomic.Uint64
	live atomic.Bool

	mu sync.Mutex
	m  map[string]cacheEntry
}

// ReadCacheTTL bounds how long a cached read is used even without a
// change: a safety net, since the backend invalidates on every write.
const ReadCacheTTL = 30 * time.Second

// maxCached bounds the cache; when full it starts over.
const maxCached = 10000

type cacheEntry struct {
	gen uint64
	at  time.Time
	v   any
	err error // ErrNotFound, or nil
}

// SetLive turns the cache on or off. Turning it either way drops what is
// cached: what was written while the backend could not see changes must
// not be served.
func (c *ReadCache) SetLive(on bool) {
	c.Invalidate()
	c.live.Store(on)
}

// Live reports whether the cache is on.
func (c *ReadCache) Live() bool { return c != nil && c.live.Load() }

// Invalidate drops everything cached. A read that started before and
// ends after it is not cached either.
func (c *ReadCache) Invalidate() {
	if c == nil {
		return
	}
	c.gen.Add(1)
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

func (c *ReadCache) get(key string) (cacheEntry, bool) {
	if !c.Live() {
		return cacheEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || e.gen != c.gen.Load() || time.Since(e.at) > ReadCacheTTL {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *ReadCache) put(key string, gen uint64, v any, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen.Load() {
		return
	}
	if c.m == nil || len(c.m) >= maxCached {
		c.m = make(map[string]cacheEntry)
	}
	c.m[key] = cacheEntry{gen: gen, at: time.Now(), v: v, err: err}
}

// Cached runs read through c under key. Values are cloned by clone on the
// way in and out, so that no caller shares a slice with another. An answer
// that there is no such thing (ErrNotFound) is kept too: most mail that
// reaches a milter on port 25 comes from addresses that are no user's.
// Other errors are not kept. The generation is taken before the read: a
// change committed meanwhile moves it on, and the answer read is then not
// kept.
func Cached[T any](c *ReadCache, key string, clone func(T) T, read func() (T, error)) (T, error) {
	if e, ok := c.get(key); ok {
		if e.err != nil {
			var zero T
			return zero, e.err
		}
		return clone(e.v.(T)), nil
	}
	if !c.Live() {
		return read()
	}
	gen := c.gen.Load()
	v, err := read()
	switch {
	case err == nil:
		c.put(key, gen, clone(v), nil)
	case errors.Is(err, ErrNotFound):
		c.put(key, gen, nil, err)
	}
	return v, err
}

// CloneKey copies a key's slices, for Cached.
func CloneKey(k Key) Key {
	k.PublicKey = slices.Clone(k.PublicKey)
	return k
}

// CloneKeys copies keys and their slices, for Cached.
func CloneKeys(ks []Key) []Key {
	if ks == nil {
		return nil
	}
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = CloneKey(k)
	}
	return out
}

// CloneUser copies a user's slices, for Cached.
func CloneUser(u OutgoingUser) OutgoingUser {
	u.Networks = slices.Clone(u.Networks)
	u.GrantedDomains = slices.Clone(u.GrantedDomains)
	return u
}

// OneCheck gives a context under which a read cache that asks the
// database whether it changed before each read (SQLite's) asks once, at the
// first cached read, for every read made with it. A front end gives one to
// each message: its reads (the user, the From domain's keys, each key, the
// domain) then see the store as it was at the first of them, for one
// question to the database instead of one per read. A change committed
// meanwhile holds from the next message on.
func OneCheck(ctx context.Context) context.Context {
	return context.WithValue(ctx, oneCheckKey{}, &oneCheck{})
}

type oneCheckKey struct{}

type oneCheck struct {
	mu    sync.Mutex
	owner any // the cache that checked, if any
}

// CheckDue reports whether the read cache owner must ask whether the
// database changed before a read with ctx: always, unless ctx comes from
// OneCheck and owner asked already under it.
func CheckDue(ctx context.Context, owner any) bool {
	c, ok := ctx.Value(oneCheckKey{}).(*oneCheck)
	if !ok {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner == owner {
		return false
	}
	c.owner = owner
	return true
}
