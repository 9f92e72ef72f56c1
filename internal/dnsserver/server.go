package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
)

// Defaults for zero Options fields.
const (
	// DefaultTTL is the TTL of the key records: short, so that a record
	// replaced in a rotation leaves caches soon.
	DefaultTTL = 300
	// DefaultNegativeTTL is how long a resolver may cache "no such record"
	// (the SOA minimum, RFC 2308 §4): short, so that a record published
	// just after a lookup is found soon.
	DefaultNegativeTTL = 60
	// DefaultUDPSize is the EDNS0 UDP payload size offered and honoured
	// (the DNS flag day 2020 value), which avoids IP fragmentation. An
	// RSA 4096 record (about 750 bytes) fits; a larger answer is truncated
	// and asked again over TCP.
	DefaultUDPSize = 1232
	// minUDPSize is the size every DNS client accepts (RFC 1035 §2.3.4),
	// used without EDNS0 and as the floor of an advertised size (RFC 6891
	// §6.2.5).
	minUDPSize = 512
)

// ErrOptions means the Options are unusable.
var ErrOptions = errors.New("dnsserver: invalid options")

// NameServer is one NS record of the zone.
type NameServer struct {
	// Name is the name server's host name.
	Name string
	// Addrs are its addresses, served as A and AAAA records when Name is
	// inside the zone (the parent's glue names the same addresses). Names
	// outside the zone need none.
	Addrs []netip.Addr
}

// Options configure a Server.
type Options struct {
	// Zone is the apex of the delegated zone, e.g. "dkim.provider.example".
	// Required.
	Zone string
	// NameServers are the zone's NS records. Required: at least one.
	NameServers []NameServer
	// Hostmaster is the SOA RNAME as a mail address or DNS name; empty
	// means "hostmaster.<Zone>".
	Hostmaster string
	// TTL is the TTL of TXT records; zero means DefaultTTL. SOA and NS
	// records have an hour.
	TTL uint32
	// NegativeTTL is the SOA minimum; zero means DefaultNegativeTTL.
	NegativeTTL uint32
	// UDPSize is the largest UDP answer sent to an EDNS0 client; zero
	// means DefaultUDPSize. Values below 512 are taken as 512.
	UDPSize uint16
	// Logger gets refresh failures and listener errors; nil means
	// slog.Default(). Queries are not logged.
	Logger *slog.Logger
	// Now is the clock for SOA serials; nil means time.Now.
	Now func() time.Time
}

// Record is one TXT record of the zone.
type Record struct {
	// Name is the fully qualified owner name, inside the zone, with or
	// without the final dot, in any case.
	Name string
	// Value is the whole TXT value; the server cuts it into strings of at
	// most 255 bytes.
	Value string
}

// Source gives the records the zone should serve now.
type Source interface {
	ZoneRecords(ctx context.Context) ([]Record, error)
}

// Server answers queries for one zone. Create it with New; it is safe for
// concurrent use.
type Server struct {
	o     Options
	zone  string // canonical, with the final dot
	soa   dns.SOA
	ns    []dns.RR
	glue  map[string][]dns.RR // in-zone name server → A/AAAA
	snap  atomic.Pointer[snapshot]
	mu    sync.Mutex // serialises Load
	log   *slog.Logger
	udpSz uint16
}

// snapshot is the zone's data at one moment; it is replaced whole.
type snapshot struct {
	txt    map[string][]dns.RR // canonical name → TXT records
	exists map[string]bool     // names with data and the empty non-terminals above them
	serial uint32
	key    string // what the records were, to tell a change
}

// New checks o and returns a server answering from an empty zone (every
// name but the apex and the name servers NXDOMAIN) until Load.
func New(o Options) (*Server, error) {
	zone := dns.CanonicalName(o.Zone)
	if o.Zone == "" || zone == "." {
		return nil, fmt.Errorf("%w: no zone", ErrOptions)
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("%w: zone %q is not a domain name", ErrOptions, o.Zone)
	}
	if len(o.NameServers) == 0 {
		return nil, fmt.Errorf("%w: zone %s needs at least one name server (NS)", ErrOptions, strings.TrimSuffix(zone, "."))
	}
	s := &Server{o: o, zone: zone, glue: map[string][]dns.RR{}, log: o.Logger, udpSz: o.UDPSize}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.udpSz == 0 {
		s.udpSz = DefaultUDPSize
	}
	s.udpSz = max(s.udpSz, minUDPSize)
	if s.o.TTL == 0 {
		s.o.TTL = DefaultTTL
	}
	if s.o.NegativeTTL == 0 {
		s.o.NegativeTTL = DefaultNegativeTTL
	}
	for _, ns := range o.NameServers {
		name := dns.CanonicalName(ns.Name)
		if _, ok := dns.IsDomainName(name); !ok || ns.Name == "" {
			return nil, fmt.Errorf("%w: name server %q is not a host name", ErrOptions, ns.Name)
		}
		s.ns = append(s.ns, &dns.NS{Hdr: hdr(zone, dns.TypeNS, 3600), Ns: name})
		if !dns.IsSubDomain(zone, name) {
			continue
		}
		if len(ns.Addrs) == 0 {
			return nil, fmt.Errorf("%w: name server %s is inside the zone and needs an address (glue)", ErrOptions, strings.TrimSuffix(name, "."))
		}
		for _, a := range ns.Addrs {
			a = a.Unmap()
			if a.Is4() {
				s.glue[name] = append(s.glue[name], &dns.A{Hdr: hdr(name, dns.TypeA, 3600), A: a.AsSlice()})
			} else {
				s.glue[name] = append(s.glue[name], &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, 3600), AAAA: a.AsSlice()})
			}
		}
	}
	mbox := o.Hostmaster
	if mbox == "" {
		mbox = "hostmaster." + zone
	} else if local, dom, ok := strings.Cut(mbox, "@"); ok {
		mbox = strings.ReplaceAll(local, ".", `\.`) + "." + dom
	}
	s.soa = dns.SOA{
		Hdr:     hdr(zone, dns.TypeSOA, 3600),
		Ns:      s.ns[0].(*dns.NS).Ns,
		Mbox:    dns.Fqdn(mbox),
		Refresh: 3600, Retry: 600, Expire: 604800,
		Minttl: s.o.NegativeTTL,
	}
	s.snap.Store(&snapshot{txt: map[string][]dns.RR{}, exists: map[string]bool{zone: true}, serial: s.serialAfter(0)})
	return s, nil
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// Zone gives the zone apex without the final dot.
func (s *Server) Zone() string { return strings.TrimSuffix(s.zone, ".") }

// Serial gives the SOA serial of the data served now.
func (s *Server) Serial() uint32 { return s.snap.Load().serial }

func (s *Server) now() time.Time {
	if s.o.Now != nil {
		return s.o.Now()
	}
	return time.Now()
}

// serialAfter gives a serial greater than prev (in serial arithmetic, RFC
// 1982): the current Unix time, or prev+1 when the clock is behind.
func (s *Server) serialAfter(prev uint32) uint32 {
	t := uint32(s.now().Unix())
	if int32(t-prev) > 0 {
		return t
	}
	return prev + 1
}

// Load replaces the zone's records. Records outside the zone or at the apex
// are refused with ErrOptions and nothing changes. The SOA serial moves on
// only when the records differ from those served.
func (s *Server) Load(recs []Record) error {
	next := &snapshot{txt: map[string][]dns.RR{}, exists: map[string]bool{s.zone: true}}
	keys := make([]string, 0, len(recs))
	for _, r := range recs {
		name := dns.CanonicalName(r.Name)
		if _, ok := dns.IsDomainName(name); !ok || r.Name == "" {
			return fmt.Errorf("%w: record name %q", ErrOptions, r.Name)
		}
		if !dns.IsSubDomain(s.zone, name) || name == s.zone {
			return fmt.Errorf("%w: record %s is not below zone %s", ErrOptions, name, s.zone)
		}
		if _, ok := s.glue[name]; ok {
			return fmt.Errorf("%w: record %s is a name server's name", ErrOptions, name)
		}
		next.txt[name] = append(next.txt[name], &dns.TXT{Hdr: hdr(name, dns.TypeTXT, s.o.TTL), Txt: txtStrings(r.Value)})
		for n := name; n != s.zone; {
			next.exists[n] = true
			_, parent, _ := strings.Cut(n, ".")
			n = parent
		}
		keys = append(keys, name+" "+r.Value)
	}
	for name := range s.glue {
		for n := name; n != s.zone; {
			next.exists[n] = true
			_, parent, _ := strings.Cut(n, ".")
			n = parent
		}
	}
	slices.Sort(keys)
	next.key = strings.Join(keys, "\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snap.Load()
	if cur.key == next.key && cur.serial != 0 {
		return nil
	}
	next.serial = s.serialAfter(cur.serial)
	s.snap.Store(next)
	return nil
}

// txtStrings cuts a value into character-strings of at most 255 bytes and
// escapes them the way miekg/dns reads TXT strings (presentation format,
// RFC 1035 §5.1), so the bytes on the wire are the value's.
func txtStrings(value string) []string {
	parts := dkim.SplitTXT(value)
	for i, p := range parts {
		if strings.ContainsAny(p, `"\`) {
			p = strings.ReplaceAll(p, `\`, `\\`)
			parts[i] = strings.ReplaceAll(p, `"`, `\"`)
		}
	}
	return parts
}

// Refresh loads the records src gives now.
func (s *Server) Refresh(ctx context.Context, src Source) error {
	recs, err := src.ZoneRecords(ctx)
	if err != nil {
		return fmt.Errorf("dnsserver: refresh: %w", err)
	}
	return s.Load(recs)
}

// Follow refreshes from src every interval, and at once whenever changed
// receives, until ctx ends. A failed refresh is logged and the old data is
// kept: serving the last good records beats serving none.
func (s *Server) Follow(ctx context.Context, src Source, interval time.Duration, changed <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx, src); err != nil && ctx.Err() == nil {
			s.log.Warn("dns_zone_refresh_failed", "zone", s.Zone(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
	}
}

// Listen starts answering on addr over UDP and TCP (the same port) until
// ctx ends; it returns once both listeners are bound, with the bound
// address (useful with port 0) and a function that waits for them to stop.
func (s *Server) Listen(ctx context.Context, addr string) (netip.AddrPort, func() error, error) {
	pc, l, err := listenPair(addr)
	if err != nil {
		return netip.AddrPort{}, nil, fmt.Errorf("dnsserver: %w", err)
	}
	bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	servers := []*dns.Server{
		{PacketConn: pc, Handler: s, UDPSize: int(s.udpSz)},
		{Listener: l, Handler: s, ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }},
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			for _, o := range servers {
				o.Shutdown()
			}
			return netip.AddrPort{}, nil, fmt.Errorf("dnsserver: serve %s: %w", bound, err)
		}
	}
	stopped := make(chan struct{})
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, srv := range servers {
			srv.ShutdownContext(sctx)
		}
		close(stopped)
	}()
	wait := func() error {
		<-stopped
		var errs []error
		for range servers {
			if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	return bound, wait, nil
}

// ServeDNS answers one query; it implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, tcp := w.LocalAddr().(*net.TCPAddr)
	m := s.Answer(r, tcp)
	if m == nil {
		return
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns_write_failed", "remote", w.RemoteAddr().String(), "err", err)
	}
}

// Reply answers a query in wire format, as ServeDNS does after miekg/dns
// has read it: nil (no answer) for bytes too short to carry a DNS header or
// that are a response, FORMERR for a header followed by a malformed body.
func (s *Server) Reply(wire []byte, tcp bool) []byte {
	req := new(dns.Msg)
	if err := req.Unpack(wire); err != nil {
		var h dns.Msg
		if len(wire) < 12 {
			return nil
		}
		// The header alone: ID, opcode and flags, to say FORMERR to the
		// right query (RFC 1035 §4.1.1).
		h.Id = uint16(wire[0])<<8 | uint16(wire[1])
		if wire[2]&0x80 != 0 {
			return nil
		}
		h.Opcode = int(wire[2]>>3) & 0xf
		h.RecursionDesired = wire[2]&1 != 0
		m := new(dns.Msg)
		m.SetRcodeFormatError(&h)
		out, err := m.Pack()
		if err != nil {
			return nil
		}
		return out
	}
	m := s.Answer(req, tcp)
	if m == nil {
		return nil
	}
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}

// Answer gives the response to a query, nil for none (a response, which is
// never answered). tcp says whether the answer goes back over TCP, where it
// is never truncated.
func (s *Server) Answer(r *dns.Msg, tcp bool) *dns.Msg {
	if r.Response {
		return nil
	}
	m := new(dns.Msg)
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	m.Compress = true
	if len(r.Question) > 0 {
		m.Question = r.Question[:1]
	}
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return s.finish(r, m, tcp)
	}
	if len(r.Question) != 1 || len(r.Answer) > 0 || len(r.Ns) > 0 {
		m.Rcode = dns.RcodeFormatError
		return s.finish(r, m, tcp)
	}
	opt := r.IsEdns0()
	if opt != nil && opt.Version() != 0 {
		// RFC 6891 §6.1.3: a version we do not speak.
		m.Rcode = dns.RcodeBadVers
		return s.finish(r, m, tcp)
	}
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return s.finish(r, m, tcp)
	}
	if !dns.IsSubDomain(s.zone, name) {
		// Not our zone, and we never recurse.
		m.Rcode = dns.RcodeRefused
		return s.finish(r, m, tcp)
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		// Every node builds the zone itself; nothing to transfer.
		m.Rcode = dns.RcodeRefused
		return s.finish(r, m, tcp)
	}
	m.Authoritative = true
	snap := s.snap.Load()
	var ans, extra []dns.RR
	switch {
	case name == s.zone:
		if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
			soa := s.soa
			soa.Serial = snap.serial
			ans = append(ans, &soa)
		}
		if q.Qtype == dns.TypeNS || q.Qtype == dns.TypeANY {
			ans = append(ans, s.ns...)
			for _, ns := range s.ns {
				extra = append(extra, s.glue[ns.(*dns.NS).Ns]...)
			}
		}
	case s.glue[name] != nil:
		for _, rr := range s.glue[name] {
			if q.Qtype == rr.Header().Rrtype || q.Qtype == dns.TypeANY {
				ans = append(ans, rr)
			}
		}
	default:
		if q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY {
			ans = snap.txt[name]
		}
		if !snap.exists[name] {
			m.Rcode = dns.RcodeNameError
		}
	}
	for _, rr := range ans {
		m.Answer = append(m.Answer, withName(rr, q.Name))
	}
	m.Extra = extra
	if len(m.Answer) == 0 {
		// NXDOMAIN or NODATA: the SOA says for how long (RFC 2308 §3, §5).
		soa := s.soa
		soa.Serial = snap.serial
		soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
		m.Ns = []dns.RR{&soa}
	}
	return s.finish(r, m, tcp)
}

// withName gives rr with the owner name spelt as the question spelt it, so
// that a resolver matching case (draft-vixie-dnsext-dns0x20) accepts it.
func withName(rr dns.RR, name string) dns.RR {
	if rr.Header().Name == name {
		return rr
	}
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}

// finish adds the OPT record when the query had one and truncates a UDP
// answer that does not fit the client's size (RFC 6891 §7, RFC 1035
// §4.2.1).
func (s *Server) finish(r, m *dns.Msg, tcp bool) *dns.Msg {
	size := minUDPSize
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(s.udpSz, opt.Do())
		if m.Rcode > 0xf {
			// The upper bits of an extended RCODE live in the OPT record.
			m.IsEdns0().SetExtendedRcode(uint16(m.Rcode))
		}
		size = min(max(int(opt.UDPSize()), minUDPSize), int(s.udpSz))
	}
	if tcp {
		size = dns.MaxMsgSize
	}
	m.Truncate(size)
	return m
}

// listenPair opens UDP and TCP on the same port of addr. With port 0 the
// system picks a UDP port, whose TCP twin may be taken: then it tries
// another, a few times.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		l, err := net.Listen("tcp", net.JoinHostPort(bound.Addr().String(), fmt.Sprint(bound.Port())))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || try == 20 {
			return nil, nil, err
		}
	}
}
