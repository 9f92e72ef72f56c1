package relay

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// listener counts connections against its own limits and wraps each in a
// conn.
type listener struct {
	net.Listener
	srv    *Server
	mode   Mode
	limits *connLimits
}

// rejectSlots bounds the goroutines answering connections over the limit,
// so that a flood cannot make them pile up; beyond it a connection is
// closed without a word.
const rejectSlots = 16

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.srv.isClosed() {
			c.Close()
			return nil, net.ErrClosed
		}
		ip := remoteAddr(c)
		key := ipKey(ip)
		log := l.srv.log.With("conn_id", newID(), "remote", ip.String(), "mode", l.mode.String())
		if ok, why := l.limits.acquire(key); !ok {
			log.Warn("connection_refused", "reason", why)
			l.reject(c)
			continue
		}
		o := &l.srv.opts
		tc := &conn{Conn: c, ip: ip, mode: l.mode, log: log, start: time.Now(),
			authIdle: o.IdleTimeout, session: o.SessionTimeout}
		tc.idle.Store(int64(o.PreAuthIdleTimeout))
		tc.release = func() {
			l.limits.release(key)
			l.srv.open.remove(tc)
		}
		l.srv.open.add(tc)
		log.Debug("connection_opened")
		return tc, nil
	}
}

// reject answers 421 (RFC 5321 §3.8) and closes, in the background: over
// TLS for an implicit-TLS listener, so that the client can read it.
func (l *listener) reject(c net.Conn) {
	select {
	case l.limits.rejecting <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.limits.rejecting }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var w net.Conn = c
		if l.mode == ModeSubmissions {
			tc := tls.Server(c, l.srv.opts.TLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			w = tc
		}
		w.Write([]byte("421 4.7.0 " + l.srv.opts.Hostname + " too many connections, try again later\r\n"))
	}()
}

// conn is one client connection as accepted, below TLS. It enforces the
// idle and session timeouts on every read, can hang up right after the
// next reply, and gives back its place in the limits when closed.
type conn struct {
	net.Conn
	ip       netip.Addr
	mode     Mode
	log      *slog.Logger
	start    time.Time
	authIdle time.Duration // the idle timeout once authorised
	session  time.Duration
	release  func()

	// idle is the current idle timeout (a time.Duration): the short
	// pre-authentication one until authorised is called.
	idle atomic.Int64

	hangup    atomic.Bool
	closeOnce sync.Once
}

// Read sets its own deadline: the idle timeout from now, capped by the end
// of the session. go-smtp's deadlines are ignored (see SetReadDeadline), so
// a slow DATA is bounded by progress, not by when the command came.
func (c *conn) Read(p []byte) (int, error) {
	d := time.Now().Add(time.Duration(c.idle.Load()))
	if end := c.start.Add(c.session); end.Before(d) {
		d = end
	}
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// SetReadDeadline does nothing: Read manages the read deadline.
func (c *conn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline sets only the write deadline, for the same reason.
func (c *conn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

// Write closes the connection after writing if hangUp was called: the
// reply being written is the last one.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.hangup.Load() {
		c.Close()
	}
	return n, err
}

// authorised lifts the idle timeout from the pre-authentication one to the
// session's: the client proved who it is (AUTH, or MAIL by source address).
func (c *conn) authorised() { c.idle.Store(int64(c.authIdle)) }

// hangUp makes the next reply the last.
func (c *conn) hangUp() { c.hangup.Store(true) }

// Close closes once and frees the connection's place.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.release()
		c.log.Debug("connection_closed", "duration", time.Since(c.start).Round(time.Millisecond).String())
	})
	return err
}

// connOf finds the conn under a go-smtp connection, TLS or not.
func connOf(nc net.Conn) *conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// connLimits counts one listener's open connections, in all and per
// address.
type connLimits struct {
	max, perIP int
	rejecting  chan struct{}

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

func newConnLimits(max, perIP int) *connLimits {
	return &connLimits{max: max, perIP: perIP, rejecting: make(chan struct{}, rejectSlots),
		byIP: make(map[string]int)}
}

// acquire takes a place for an address, or says which bound is reached.
func (l *connLimits) acquire(key string) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return false, "too many connections on the listener"
	}
	if l.byIP[key] >= l.perIP {
		return false, "too many connections from the address"
	}
	l.total++
	l.byIP[key]++
	return true, ""
}

func (l *connLimits) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[key]--; l.byIP[key] <= 0 {
		delete(l.byIP, key)
	}
}

// openConns holds the server's open connections, over all listeners.
type openConns struct {
	mu sync.Mutex
	m  map[*conn]struct{}
}

func (o *openConns) add(c *conn) {
	o.mu.Lock()
	o.m[c] = struct{}{}
	o.mu.Unlock()
}

func (o *openConns) remove(c *conn) {
	o.mu.Lock()
	delete(o.m, c)
	o.mu.Unlock()
}

// closeAll closes every open connection (a shutdown that ran out of time).
func (o *openConns) closeAll() {
	o.mu.Lock()
	open := make([]*conn, 0, len(o.m))
	for c := range o.m {
		open = append(open, c)
	}
	o.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// ipKey groups addresses for per-address limits: an IPv4 address alone, an
// IPv6 address by its /64, which one subscriber usually holds whole.
func ipKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
