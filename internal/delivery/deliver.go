package delivery

import (
	"github.com/dkimd/dkimd/internal/queue"

	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
)

// Options configure a Deliverer. The zero value delivers to each recipient
// domain's MX on port 25 with opportunistic STARTTLS, using the name
// servers in /etc/resolv.conf.
type Options struct {
	// SmartHost is the HOST:PORT of a relay that takes all mail. Empty
	// means deliver to each recipient domain's MX.
	SmartHost string
	// SmartHostTLS says how to secure the smart host connection; the zero
	// value is opportunistic STARTTLS.
	SmartHostTLS TLSMode
	// TLSConfig is used for the smart host (RootCAs, ServerName, client
	// certificates); nil means the system roots and the host of SmartHost.
	TLSConfig *tls.Config
	// Username and Password, when Username is set, authenticate to the
	// smart host with AUTH PLAIN (RFC 4616).
	Username, Password string

	// Resolver finds MX and address records; nil means a DNSResolver on
	// the servers of /etc/resolv.conf.
	Resolver Resolver
	// MXPort is the port MX hosts are dialed on; 0 means 25.
	MXPort int
	// MXTLS is the TLS mode for MX hosts; the zero value is opportunistic.
	MXTLS TLSMode

	// HeloName is the name said in EHLO and used in DSNs; "" means the
	// host name.
	HeloName string

	// Concurrency bounds the messages delivered at once; 0 means 20.
	Concurrency int
	// PerDestination bounds the transactions open to one smart host or
	// recipient domain at once; 0 means 20 (as Postfix's
	// default_destination_concurrency_limit).
	PerDestination int
	// ConnectionIdle is how long a connection to a next hop stays open
	// after a transaction, waiting for the next message to the same host
	// (sent after RSET); 0 means 5s, a negative value closes every
	// connection after its transaction.
	ConnectionIdle time.Duration

	// ConnectTimeout bounds a TCP connect; 0 means 30s.
	ConnectTimeout time.Duration
	// CommandTimeout bounds every other SMTP step (each reply, each write
	// during DATA); 0 means 5 minutes (RFC 5321 §4.5.3.2).
	CommandTimeout time.Duration
	// DataTimeout bounds the wait for the reply to the final dot; 0 means
	// 10 minutes (RFC 5321 §4.5.3.2.6).
	DataTimeout time.Duration

	// RetryBase is the wait after the first temporary failure; it doubles
	// with each further attempt up to RetryMax, and each wait is drawn at
	// random from its upper half (jitter). 0 means 5 minutes and 4 hours.
	RetryBase, RetryMax time.Duration
	// Expiry is how long a message may stay queued before its remaining
	// recipients bounce; 0 means 5 days.
	Expiry time.Duration

	// PollInterval is how often Run looks for due messages when nothing
	// wakes it; 0 means 1s.
	PollInterval time.Duration

	// Owner names this deliverer in the queue's leases (logs, the admin
	// API); "" means the host name and process id.
	Owner string
	// Lease is how long a claimed message stays leased to this deliverer
	// without a renewal; the lease is renewed before each attempt. 0 means
	// twice the longest one attempt can take on one host (ConnectTimeout +
	// DataTimeout + 4 CommandTimeouts), and at least an hour. A message
	// whose lease runs out goes back to the queue for others to claim.
	Lease time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives each delivery outcome (info), failures of the queue
	// (error) and dropped connections (debug); nil discards.
	Log *slog.Logger
	// Metrics receives the counters; nil means a private set. Pass the
	// one given to the queue so Stats sees delivery counters.
	Metrics *queue.Metrics
}

// Deliverer takes due messages from a queue.DeliveryQueue and delivers
// them.
type Deliverer struct {
	q              queue.DeliveryQueue
	owner          string
	lease          time.Duration
	opts           Options
	resolver       Resolver
	helo           string
	now            func() time.Time
	log            *slog.Logger
	m              *queue.Metrics
	concurrency    int
	perDest        int
	connectTimeout time.Duration
	commandTimeout time.Duration
	dataTimeout    time.Duration
	retryBase      time.Duration
	retryMax       time.Duration
	expiry         time.Duration
	poll           time.Duration
	auth           func() sasl.Client
	conns          *connCache

	destMu sync.Mutex
	dests  map[string]*destSlot
}

type destSlot struct {
	ch    chan struct{}
	users int
}

// NewDeliverer returns a Deliverer for q.
func NewDeliverer(q queue.DeliveryQueue, opts Options) *Deliverer {
	d := &Deliverer{
		q:              q,
		opts:           opts,
		resolver:       opts.Resolver,
		helo:           opts.HeloName,
		now:            opts.Now,
		log:            cmp.Or(opts.Log, slog.New(slog.DiscardHandler)),
		m:              cmp.Or(opts.Metrics, new(queue.Metrics)),
		concurrency:    cmp.Or(opts.Concurrency, 20),
		perDest:        cmp.Or(opts.PerDestination, 20),
		connectTimeout: cmp.Or(opts.ConnectTimeout, 30*time.Second),
		commandTimeout: cmp.Or(opts.CommandTimeout, 5*time.Minute),
		dataTimeout:    cmp.Or(opts.DataTimeout, 10*time.Minute),
		retryBase:      cmp.Or(opts.RetryBase, 5*time.Minute),
		retryMax:       cmp.Or(opts.RetryMax, 4*time.Hour),
		expiry:         cmp.Or(opts.Expiry, 5*24*time.Hour),
		poll:           cmp.Or(opts.PollInterval, time.Second),
		dests:          make(map[string]*destSlot),
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.lease = opts.Lease
	if d.lease <= 0 {
		d.lease = max(time.Hour, 2*(d.connectTimeout+d.dataTimeout+4*d.commandTimeout))
	}
	d.owner = opts.Owner
	if d.owner == "" {
		h, _ := os.Hostname()
		d.owner = cmp.Or(h, "localhost") + ":" + strconv.Itoa(os.Getpid())
	}
	// At most one idle connection per transaction slot.
	d.conns = newConnCache(cmp.Or(opts.ConnectionIdle, 5*time.Second), d.perDest)
	if d.helo == "" {
		if h, err := os.Hostname(); err == nil {
			d.helo = h
		} else {
			d.helo = "localhost"
		}
	}
	if d.resolver == nil {
		d.resolver = &DNSResolver{}
	}
	if opts.Username != "" {
		d.auth = func() sasl.Client { return sasl.NewPlainClient("", opts.Username, opts.Password) }
	}
	return d
}

// Run delivers due messages until ctx ends, then waits for the
// transactions in flight to stop (they are abandoned, their recipients
// left as they were), closes the connections it kept open and returns nil.
func (d *Deliverer) Run(ctx context.Context) error {
	sem := make(chan struct{}, d.concurrency)
	done := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer d.conns.expire(time.Now(), true) // after wg.Wait
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if free := cap(sem) - len(sem); free > 0 {
			msgs, err := d.q.Claim(ctx, d.owner, d.lease, free)
			if err != nil {
				d.log.Error("queue_claim_failed", "err", err)
			}
			for _, m := range msgs {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-sem
						select {
						case done <- struct{}{}:
						default:
						}
					}()
					d.process(ctx, &m)
				})
			}
		}
		d.conns.expire(time.Now(), false)
		timer.Reset(d.poll)
		select {
		case <-ctx.Done():
			return nil
		case <-d.q.Wait():
		case <-done:
		case <-timer.C:
		}
	}
}

// RunOnce delivers every message due now (including DSNs it makes on the
// way) once, and returns when all are done, with no connection left open.
// Tests and a "flush" command use it.
func (d *Deliverer) RunOnce(ctx context.Context) error {
	defer d.conns.expire(time.Now(), true)
	seen := make(map[string]bool)
	sem := make(chan struct{}, d.concurrency)
	for {
		msgs, err := d.q.Claim(ctx, d.owner, d.lease, 1<<20)
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		n := 0
		for _, m := range msgs {
			if seen[m.ID] {
				d.giveBack(ctx, &m)
				continue
			}
			seen[m.ID] = true
			n++
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				d.process(ctx, &m)
			})
		}
		wg.Wait()
		if n == 0 || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// acquire takes a slot for dest, waiting while PerDestination are in use.
func (d *Deliverer) acquire(ctx context.Context, dest string) error {
	d.destMu.Lock()
	s := d.dests[dest]
	if s == nil {
		s = &destSlot{ch: make(chan struct{}, d.perDest)}
		d.dests[dest] = s
	}
	s.users++
	d.destMu.Unlock()
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		d.releaseSlot(dest, s, false)
		return ctx.Err()
	}
}

func (d *Deliverer) release(dest string) {
	d.destMu.Lock()
	s := d.dests[dest]
	d.destMu.Unlock()
	d.releaseSlot(dest, s, true)
}

func (d *Deliverer) releaseSlot(dest string, s *destSlot, held bool) {
	if held {
		<-s.ch
	}
	d.destMu.Lock()
	s.users--
	if s.users == 0 {
		delete(d.dests, dest)
	}
	d.destMu.Unlock()
}

// backoff returns the wait after the n-th temporary failure (n ≥ 1).
func (d *Deliverer) backoff(n int) time.Duration {
	w := d.retryBase
	for i := 1; i < n && w < d.retryMax; i++ {
		w *= 2
	}
	w = min(w, d.retryMax)
	// Full wait drawn from [w/2, w]: spreads retries of many messages
	// deferred by one outage.
	return w/2 + rand.N(w/2+1)
}

// process makes one delivery pass over a claimed message and ends its
// lease.
func (d *Deliverer) process(ctx context.Context, c *queue.Claim) {
	log := d.log.With("msg_id", c.ID)
	if !d.deliver(ctx, log, c) {
		d.giveBack(ctx, c)
		return
	}
	d.finish(ctx, log, c)
}

// giveBack gives a claim back unchanged; it goes on when ctx has ended, so
// that a deliverer that stops leaves no lease behind.
func (d *Deliverer) giveBack(ctx context.Context, c *queue.Claim) {
	err := d.q.Release(context.WithoutCancel(ctx), c)
	if err != nil && !errors.Is(err, queue.ErrLeaseLost) {
		d.log.Error("queue_lease_not_released", "msg_id", c.ID, "err", err)
	}
}

// deliver bounces the open recipients of an expired message, or makes one
// attempt for each group of due recipients. It returns false when
// processing must stop, with the state as last recorded.
func (d *Deliverer) deliver(ctx context.Context, log *slog.Logger, c *queue.Claim) bool {
	now := d.now()
	if now.Sub(c.Queued) >= d.expiry {
		for _, r := range c.Recipients {
			if !r.Status.Final() {
				d.m.Bounced.Add(1)
				log.Info("queue_recipient_expired", "rcpt", r.Addr, "attempts", r.Attempts)
			}
		}
		reason := "message expired after " + d.expiry.String() + " in the queue"
		if err := d.q.Bounce(ctx, c, reason); err != nil {
			log.Error("queue_state_not_saved", "err", err)
			return false
		}
		return true
	}
	for _, g := range d.groups(c.Message, now) {
		if ctx.Err() != nil {
			return false
		}
		if !d.deliverGroup(ctx, log, c, g) {
			return false
		}
	}
	return true
}

// group is the due recipients of a message that share a destination.
type group struct {
	dest   string // smart host address or recipient domain
	domain string // "" for the smart host
	idx    []int  // indexes into Message.Recipients
}

func (d *Deliverer) groups(m queue.Message, now time.Time) []group {
	var out []group
	at := make(map[string]int)
	for i, r := range m.Recipients {
		if r.Status.Final() || (r.Status == queue.Deferred && r.Next.After(now)) {
			continue
		}
		dest, domain := d.opts.SmartHost, ""
		if dest == "" {
			domain = domainOf(r.Addr)
			dest = domain
		}
		j, ok := at[dest]
		if !ok {
			j = len(out)
			at[dest] = j
			out = append(out, group{dest: dest, domain: domain})
		}
		out[j].idx = append(out[j].idx, i)
	}
	return out
}

// deliverGroup runs one delivery attempt for a group and saves the
// outcome. It returns false when processing of the message must stop.
func (d *Deliverer) deliverGroup(ctx context.Context, log *slog.Logger, c *queue.Claim, g group) bool {
	if err := d.q.Renew(ctx, c, d.lease); err != nil {
		log.Error("queue_lease_not_renewed", "err", err)
		return false
	}
	m := &c.Message
	if err := d.acquire(ctx, g.dest); err != nil {
		return false
	}
	rcpts := make([]string, len(g.idx))
	for i, j := range g.idx {
		rcpts[i] = m.Recipients[j].Addr
	}
	actx, stopRenewing := d.keepLease(ctx, log, c)
	res, corrupt := d.attempt(actx, m, g, rcpts)
	stopRenewing()
	d.release(g.dest)
	if ctx.Err() != nil {
		// Shutting down: leave the recipients as they were.
		return false
	}
	if corrupt != nil {
		if err := d.q.Quarantine(ctx, c, corrupt); err != nil {
			log.Error("queue_quarantine_failed", "err", err)
		}
		return false
	}
	now := d.now()
	for i, j := range g.idx {
		r := &m.Recipients[j]
		res := res[i]
		r.Attempts++
		r.Last, r.Reply, r.Remote, r.Next = now, res.reply, res.remote, time.Time{}
		switch res.class {
		case classOK:
			r.Status = queue.Delivered
			d.m.Delivered.Add(1)
			log.Info("queue_recipient_delivered", "rcpt", r.Addr, "remote", res.remote, "reply", res.reply)
		case classPerm:
			r.Status = queue.Bounced
			d.m.Bounced.Add(1)
			log.Info("queue_recipient_bounced", "rcpt", r.Addr, "remote", res.remote, "reply", res.reply)
		default:
			r.Status = queue.Deferred
			r.Next = now.Add(d.backoff(r.Attempts))
			d.m.Deferred.Add(1)
			log.Info("queue_recipient_deferred", "rcpt", r.Addr, "remote", res.remote, "reply", res.reply,
				"attempts", r.Attempts, "next", r.Next)
		}
	}
	if allDelivered(m) {
		// Nothing left to do but remove the message (finish, Complete): one
		// fsync of msg/ instead of a state rewrite (file, fsync, rename,
		// fsync of state/) and then that. A crash before the removal sends
		// the message again, as a crash before the state write would.
		return true
	}
	if err := d.q.Record(ctx, c); err != nil {
		// The remote side may have the message; the state on disk still
		// says otherwise, so it will go out again (at least once).
		log.Error("queue_state_not_saved", "err", err)
		return false
	}
	return true
}

// keepLease renews c's lease every third of the lease while an attempt
// runs, so that a lease can be short (a node that dies gives its messages
// up soon) and an attempt long (a slow DATA). If a renewal fails the lease
// is lost (or the queue unreachable): the attempt is cancelled, since
// another deliverer may claim the message once the lease ends, and what it
// would record is refused anyway. No queue lock or transaction is held
// meanwhile. Stop waits for the renewer, which only writes c.Expires.
func (d *Deliverer) keepLease(ctx context.Context, log *slog.Logger, c *queue.Claim) (actx context.Context, stop func()) {
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(d.lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-actx.Done():
				return
			case <-t.C:
				if err := d.q.Renew(actx, c, d.lease); err != nil {
					if actx.Err() == nil {
						log.Error("queue_lease_lost_during_delivery", "err", err)
						cancel()
					}
					return
				}
			}
		}
	}()
	return actx, func() {
		cancel()
		<-done
	}
}

// allDelivered reports whether every recipient of m was delivered, so that
// no state needs keeping and no DSN making.
func allDelivered(m *queue.Message) bool {
	for _, r := range m.Recipients {
		if r.Status != queue.Delivered {
			return false
		}
	}
	return true
}

// attempt delivers to a group over the smart host or the domain's MX hosts
// in preference order, and returns one result per recipient.
func (d *Deliverer) attempt(ctx context.Context, m *queue.Message, g group, rcpts []string) ([]rcptResult, error) {
	all := func(cl class, reply string) []rcptResult {
		out := make([]rcptResult, len(rcpts))
		for i := range out {
			out[i] = rcptResult{class: cl, reply: reply}
		}
		return out
	}
	var hops []hop
	if g.domain == "" {
		host, _, err := net.SplitHostPort(d.opts.SmartHost)
		if err != nil {
			return all(classTemp, "bad smart host address: "+err.Error()), nil
		}
		h := hop{addr: d.opts.SmartHost, serverName: host, mode: d.opts.SmartHostTLS, tlsConfig: d.opts.TLSConfig}
		hops = []hop{h}
	} else {
		var perm bool
		var err error
		hops, perm, err = d.route(ctx, g.domain)
		if err != nil {
			if perm {
				return all(classPerm, err.Error()), nil
			}
			return all(classTemp, err.Error()), nil
		}
	}
	var last error
	for _, h := range hops {
		if d.auth != nil && g.domain == "" {
			h.auth = d.auth() // a sasl.Client holds per-exchange state
		}
		o := d.transact(ctx, h, m, rcpts)
		if o.corrupt != nil {
			return nil, o.corrupt
		}
		if o.early == nil {
			return o.rcpts, nil
		}
		last = o.early
		d.log.Debug("queue_hop_failed", "msg_id", m.ID, "remote", h.addr, "err", o.early)
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		last = errors.New("no host to try")
	}
	return all(classTemp, last.Error()), nil
}

// route returns the hosts to try for a domain: its MX hosts in preference
// order, or the domain itself when it has no MX (RFC 5321 §5.1). perm says
// the failure is permanent.
func (d *Deliverer) route(ctx context.Context, domain string) (hops []hop, perm bool, err error) {
	port := strconv.Itoa(cmp.Or(d.opts.MXPort, 25))
	if len(domain) > 2 && domain[0] == '[' && domain[len(domain)-1] == ']' {
		// Address literal (RFC 5321 §4.1.3).
		ip := net.ParseIP(domain[1 : len(domain)-1])
		if ip == nil {
			return nil, true, fmt.Errorf("5.1.2 bad address literal %s", domain)
		}
		return []hop{{addr: net.JoinHostPort(ip.String(), port), serverName: ip.String(), mode: d.opts.MXTLS}}, false, nil
	}
	mxs, err := d.resolver.LookupMX(ctx, domain)
	if errors.Is(err, ErrNoSuchDomain) {
		return nil, true, fmt.Errorf("5.1.2 domain %s does not exist", domain)
	}
	if err != nil {
		return nil, false, fmt.Errorf("MX lookup for %s: %w", domain, err)
	}
	names := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		names = append(names, mx.Host)
	}
	if len(names) == 0 {
		names = []string{domain}
	} else if len(names) == 1 && (names[0] == "." || names[0] == "") {
		// RFC 7505 null MX: the domain takes no mail.
		return nil, true, fmt.Errorf("5.1.10 domain %s accepts no mail (null MX)", domain)
	}
	var lastErr error
	for _, name := range names {
		name = trimDot(name)
		addrs, err := d.resolver.LookupHost(ctx, name)
		if err != nil {
			lastErr = err
			continue
		}
		for _, a := range addrs {
			hops = append(hops, hop{addr: net.JoinHostPort(a, port), serverName: name, mode: d.opts.MXTLS})
		}
	}
	if len(hops) == 0 {
		if lastErr == nil || (errors.Is(lastErr, ErrNoSuchDomain) && len(mxs) == 0) {
			return nil, true, fmt.Errorf("5.1.2 no address for %s", domain)
		}
		return nil, false, fmt.Errorf("address lookup for %s: %w", domain, lastErr)
	}
	return hops, false, nil
}

// finish sends DSNs for newly bounced recipients and completes the claim:
// the message is removed once every recipient is final.
func (d *Deliverer) finish(ctx context.Context, log *slog.Logger, c *queue.Claim) {
	if err := d.notify(ctx, log, c); err != nil {
		log.Error("queue_dsn_failed", "err", err)
		d.giveBack(ctx, c)
		return
	}
	final := true
	for _, r := range c.Recipients {
		final = final && r.Status.Final()
	}
	if err := d.q.Complete(ctx, c); err != nil {
		if !final {
			log.Error("queue_state_not_saved", "err", err)
		} else {
			log.Error("queue_message_not_removed", "err", err)
			// deliverGroup skips the state write when everything was
			// delivered: write it now, so that the message is not sent
			// again while its removal fails.
			if err := d.q.Record(ctx, c); err != nil {
				log.Error("queue_state_not_saved", "err", err)
			}
		}
		d.giveBack(ctx, c)
		return
	}
	if final {
		// Debug: each recipient's line above already says how it ended.
		log.Debug("queue_message_done")
	}
}
