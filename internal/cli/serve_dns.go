package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/delegation"
	"github.com/dkimd/dkimd/internal/dnsserver"
	"github.com/dkimd/dkimd/internal/lifecycle"
)

// dnsFlags are serve's flags for the delegated zone.
type dnsFlags struct {
	listen     string
	zone       string
	ns         nameServers
	hostmaster string
	refresh    time.Duration
	// rotation
	rotateInterval time.Duration
	recordTTL      time.Duration
}

// nameServers is --dns-ns, repeatable: "ns1.dkim.provider.example=192.0.2.1,2001:db8::1"
// (addresses for a name server inside the zone) or a bare host name.
type nameServers []dnsserver.NameServer

func (n *nameServers) String() string {
	var parts []string
	for _, ns := range *n {
		parts = append(parts, ns.Name)
	}
	return strings.Join(parts, " ")
}

func (n *nameServers) Set(v string) error {
	name, addrs, _ := strings.Cut(v, "=")
	ns := dnsserver.NameServer{Name: strings.TrimSpace(name)}
	if ns.Name == "" {
		return fmt.Errorf("%q: want NAME or NAME=ADDR[,ADDR]", v)
	}
	if addrs != "" {
		for _, a := range strings.Split(addrs, ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(a))
			if err != nil {
				return fmt.Errorf("%q: %v", v, err)
			}
			ns.Addrs = append(ns.Addrs, ip)
		}
	}
	*n = append(*n, ns)
	return nil
}

func addDNSFlags(fs *flag.FlagSet) *dnsFlags {
	f := &dnsFlags{}
	fs.StringVar(&f.listen, "listen-dns", "", "serve the delegated DKIM zone on this address, UDP and TCP (off by default), e.g. :53")
	fs.StringVar(&f.zone, "dns-zone", "", "the delegated zone dkimd serves, e.g. dkim.provider.example")
	fs.Var(&f.ns, "dns-ns", "a name server of the zone, NAME or NAME=ADDR[,ADDR] for one inside the zone (repeat for each)")
	fs.StringVar(&f.hostmaster, "dns-hostmaster", "", "the zone's contact address for its SOA record (default hostmaster@ZONE)")
	fs.DurationVar(&f.refresh, "dns-refresh", 10*time.Second, "how often the zone's records are re-read from the database")
	fs.DurationVar(&f.rotateInterval, "rotation-interval", lifecycle.DefaultRotationInterval, "how often domains published by delegation or DNS UPDATE are looked at for a rotation step")
	fs.DurationVar(&f.recordTTL, "rotation-ttl-wait", lifecycle.DefaultRecordTTL, "how long after a new key's record is served everywhere before signing with it (one TTL)")
	return f
}

// startDNS starts the authoritative server of the delegated zone when
// --listen-dns is set; it stops when ctx ends.
func startDNS(ctx context.Context, f *dnsFlags, st delegation.Store, log *slog.Logger) (*dnsserver.Server, error) {
	if f.listen == "" {
		return nil, nil
	}
	if f.zone == "" || len(f.ns) == 0 {
		return nil, usagef("--listen-dns needs --dns-zone and at least one --dns-ns")
	}
	srv, err := dnsserver.New(dnsserver.Options{Zone: f.zone, NameServers: f.ns, Hostmaster: f.hostmaster, Logger: log})
	if err != nil {
		return nil, err
	}
	src := delegation.Source{Store: st, Zone: f.zone}
	// The first load before answering, so that a restart never serves an
	// empty zone.
	if err := srv.Refresh(ctx, src); err != nil {
		return nil, err
	}
	addr, _, err := srv.Listen(ctx, f.listen)
	if err != nil {
		return nil, err
	}
	go srv.Follow(ctx, src, f.refresh, nil)
	log.Info("serving_dns", "addr", addr.String(), "zone", srv.Zone(), "serial", srv.Serial())
	return srv, nil
}

// startRotation makes the scheduler that rotates the keys of domains
// published by delegation or DNS UPDATE; serve runs it (on the leader
// node of a PostgreSQL cluster). srv is this node's delegated zone, nil
// when it serves none.
func startRotation(ctx context.Context, f *dnsFlags, lc *lifecycle.Service, st lifecycle.SchedulerStore, checker lifecycle.Checker,
	srv *dnsserver.Server, src delegation.Store, log *slog.Logger) (*lifecycle.Scheduler, error) {
	// The DNS UPDATE publisher opens a domain's TSIG secret through the
	// lifecycle service, which holds the master key.
	pub := delegation.Publisher{Secret: lc.TSIGSecret}
	if srv != nil {
		s := delegation.Source{Store: src, Zone: f.zone}
		pub.Refresh = func(ctx context.Context) error { return srv.Refresh(ctx, s) }
	}
	sched, err := lifecycle.NewScheduler(lifecycle.SchedulerOptions{
		Store: st, Checker: checker, Service: lc, Publisher: pub,
		RecordTTL: f.recordTTL, Interval: f.rotateInterval, Log: log,
	})
	if err != nil {
		return nil, err
	}
	return sched, nil
}

// monitorWithRotation adds blocked rotations to the DNS monitor's alerts:
// a rotation that cannot proceed is alerted like a broken record.
type monitorWithRotation struct {
	*lifecycle.Monitor
	sched *lifecycle.Scheduler
}

// Alerts gives the monitor's alerts and the blocked rotations.
func (m monitorWithRotation) Alerts() []lifecycle.Alert {
	return append(m.Monitor.Alerts(), m.sched.Alerts()...)
}
