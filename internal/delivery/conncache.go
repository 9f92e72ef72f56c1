package delivery

import (
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// connCache keeps SMTP connections to next hops open between transactions,
// as Postfix's connection cache does: a message for the same hop goes out
// on a connection that just delivered one, saving the connect, greeting,
// EHLO (and TLS handshake and AUTH) of a new session. After a reply to the
// final dot the next MAIL follows at once; after a transaction that ended
// with every RCPT refused, RSET (and, as go-smtp's client does after RSET,
// EHLO) comes first.
//
// A connection is cached only after a transaction that ended cleanly (a
// reply to the final dot, or to every RCPT), never after a lost connection
// or an aborted DATA. It is closed once idle for longer than idle; one the
// server closed in the meantime fails at MAIL (or RSET) and is dropped for
// a fresh one.
//
// The cache also lends the buffers that message bodies are written with.
type connCache struct {
	idle    time.Duration // ≤ 0: no caching
	maxIdle int           // per key

	writers dataWriters

	mu    sync.Mutex
	conns map[string][]*cachedConn // newest last
}

// cachedConn is one SMTP session to a next hop.
type cachedConn struct {
	c  *smtp.Client
	dc *deadlineConn // under everything: every read and write has a timeout
	// conn is what c writes to: dc, or the TLS connection over it.
	// Message bodies are written to it directly (datawriter.go).
	conn net.Conn
	// rset says that the server may still hold a mail transaction (MAIL
	// was accepted, no reply to a final dot came since), so the next one
	// must start with RSET.
	rset  bool
	since time.Time // when it went idle
}

func newConnCache(idle time.Duration, maxIdle int) *connCache {
	return &connCache{idle: idle, maxIdle: maxIdle, conns: make(map[string][]*cachedConn)}
}

// connKey names what makes two connections interchangeable: the address,
// the name checked in its certificate and the TLS mode asked for. AUTH is
// the same for every smart host connection (Options.Username).
func connKey(h hop) string {
	return h.addr + "|" + h.serverName + "|" + h.mode.String()
}

// get returns the most recently used idle connection for key that has not
// been idle for too long, or nil.
func (cc *connCache) get(key string, now time.Time) *cachedConn {
	if cc.idle <= 0 {
		return nil
	}
	var stale []*cachedConn
	var out *cachedConn
	cc.mu.Lock()
	l := cc.conns[key]
	for len(l) > 0 {
		c := l[len(l)-1]
		l = l[:len(l)-1]
		if now.Sub(c.since) < cc.idle {
			out = c
			break
		}
		stale = append(stale, c)
	}
	if len(l) == 0 {
		delete(cc.conns, key)
	} else {
		cc.conns[key] = l
	}
	cc.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
	return out
}

// put caches c for key, or closes it if caching is off or enough
// connections for key are idle already.
func (cc *connCache) put(key string, c *cachedConn, now time.Time) {
	if cc.idle <= 0 {
		c.quit()
		return
	}
	c.since = now
	cc.mu.Lock()
	if len(cc.conns[key]) < cc.maxIdle {
		cc.conns[key] = append(cc.conns[key], c)
		c = nil
	}
	cc.mu.Unlock()
	if c != nil {
		c.quit()
	}
}

// expire closes the connections idle since before now-idle (all of them
// when all is set), saying QUIT first.
func (cc *connCache) expire(now time.Time, all bool) {
	var old []*cachedConn
	cc.mu.Lock()
	for k, l := range cc.conns {
		keep := l[:0]
		for _, c := range l {
			if all || now.Sub(c.since) >= cc.idle {
				old = append(old, c)
			} else {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			delete(cc.conns, k)
		} else {
			cc.conns[k] = keep
		}
	}
	cc.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range old {
		wg.Go(c.quit)
	}
	wg.Wait()
}

// quit ends the session politely, waiting at most a second for the reply.
func (c *cachedConn) quit() {
	c.dc.timeout.Store(int64(time.Second))
	_ = c.c.Quit() // the session is over either way
	_ = c.c.Close()
}

// reset says RSET if the last transaction did not end on the server.
func (c *cachedConn) reset() error {
	if !c.rset {
		return nil
	}
	if err := c.c.Reset(); err != nil {
		return err
	}
	c.rset = false
	return nil
}

// close drops the connection without QUIT: it was idle too long, and the
// server has likely closed its end already.
func (c *cachedConn) close() { _ = c.c.Close() }
