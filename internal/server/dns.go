package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/dkimd/dkimd/internal/delegation"
	"github.com/dkimd/dkimd/internal/dnsserver"
	"github.com/dkimd/dkimd/internal/lifecycle"
)

// DefaultDNSRefresh is how often the delegated zone is re-read from the
// database when DNSOptions.Refresh is zero.
const DefaultDNSRefresh = 10 * time.Second

// DNSOptions are serve's settings for the delegated zone and for the
// rotation of keys published by delegation or DNS UPDATE. The zero value
// serves no zone; the rotation then runs with lifecycle's defaults.
type DNSOptions struct {
	// Listen is the address the zone is served on, UDP and TCP; "" serves
	// none. With it, Zone and at least one NameServer are needed.
	Listen string
	// Zone is the delegated zone, e.g. dkim.provider.example.
	Zone string
	// NameServers are the zone's name servers.
	NameServers []dnsserver.NameServer
	// Hostmaster is the SOA contact; "" means hostmaster@Zone.
	Hostmaster string
	// Refresh is how often the zone's records are re-read from the
	// database; 0 means DefaultDNSRefresh.
	Refresh time.Duration
	// RotateInterval is how often domains are looked at for a rotation
	// step, RecordTTL how long after a new key's record is served before
	// signing with it; 0 means lifecycle's defaults.
	RotateInterval, RecordTTL time.Duration
}

// startDNS starts the authoritative server of the delegated zone when
// --listen-dns is set; it stops when ctx ends.
func startDNS(ctx context.Context, f *DNSOptions, st delegation.Store, log *slog.Logger) (*dnsserver.Server, error) {
	if f.Listen == "" {
		return nil, nil
	}
	if f.Zone == "" || len(f.NameServers) == 0 {
		return nil, optionf("--listen-dns needs --dns-zone and at least one --dns-ns")
	}
	srv, err := dnsserver.New(dnsserver.Options{Zone: f.Zone, NameServers: f.NameServers, Hostmaster: f.Hostmaster, Logger: log})
	if err != nil {
		return nil, err
	}
	src := delegation.Source{Store: st, Zone: f.Zone}
	// The first load before answering, so that a restart never serves an
	// empty zone.
	if err := srv.Refresh(ctx, src); err != nil {
		return nil, err
	}
	addr, _, err := srv.Listen(ctx, f.Listen)
	if err != nil {
		return nil, err
	}
	refresh := f.Refresh
	if refresh <= 0 {
		refresh = DefaultDNSRefresh
	}
	go srv.Follow(ctx, src, refresh, nil)
	log.Info("serving_dns", "addr", addr.String(), "zone", srv.Zone(), "serial", srv.Serial())
	return srv, nil
}

// startRotation makes the scheduler that rotates the keys of domains
// published by delegation or DNS UPDATE; serve runs it (on the leader
// node of a PostgreSQL cluster). srv is this node's delegated zone, nil
// when it serves none.
func startRotation(f *DNSOptions, lc *lifecycle.Service, st lifecycle.SchedulerStore, checker lifecycle.Checker,
	srv *dnsserver.Server, src delegation.Store, log *slog.Logger) (*lifecycle.Scheduler, error) {
	// The DNS UPDATE publisher opens a domain's TSIG secret through the
	// lifecycle service, which holds the master key.
	pub := delegation.Publisher{Secret: lc.TSIGSecret}
	if srv != nil {
		s := delegation.Source{Store: src, Zone: f.Zone}
		pub.Refresh = func(ctx context.Context) error { return srv.Refresh(ctx, s) }
	}
	return lifecycle.NewScheduler(lifecycle.SchedulerOptions{
		Store: st, Checker: checker, Service: lc, Publisher: pub,
		RecordTTL: f.RecordTTL, Interval: f.RotateInterval, Log: log,
	})
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
