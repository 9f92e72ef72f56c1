package admin

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/delegation"
	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/store"
)

// PublishRequest changes how a domain's key records reach DNS.
type PublishRequest struct {
	// Mode is the new mode; empty keeps the current one.
	Mode store.PublishMode
	// Zone is dkimd's delegated zone (serve --dns-zone), needed to make a
	// domain delegated the first time. A domain keeps its name in the zone
	// after that: its customer's CNAMEs point at it.
	Zone string
	// RotateEvery, when positive, sets how long a key signs before a
	// scheduled rotation; zero keeps the current setting.
	RotateEvery time.Duration
	// UpdateServer (HOST:PORT) and TSIGName, when set, replace those for
	// DNS UPDATE. TSIGSecret, when set, is the TSIG key's secret: the
	// base64 text of a BIND key file's secret, or the whole key file
	// (tsig-keygen's output). It is sealed under the master key.
	UpdateServer string
	TSIGName     string
	TSIGSecret   []byte
}

// SetPublishing changes a domain's publishing mode and its settings. For
// a domain made delegated it chooses the domain's name in the zone (kept
// from then on); for DNS UPDATE it seals the TSIG secret. The audit log
// says what changed, never the secret.
func (s *Service) SetPublishing(ctx context.Context, a Actor, name string, r PublishRequest) (store.Domain, error) {
	d, err := s.GetDomain(ctx, a, name)
	if err != nil {
		return d, err
	}
	if r.Mode != "" {
		d.Publish = r.Mode
	}
	if d.Rotated() && d.AutoActivate {
		// The rotation scheduler activates a new key when the old one is
		// due, not as soon as its record is seen.
		d.AutoActivate = false
	}
	var detail []string
	detail = append(detail, "publish="+string(d.Publish))
	if d.Publish == store.PublishDelegated {
		zone := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(r.Zone), "."))
		switch {
		case d.DelegatedName != "" && (zone == "" || strings.HasSuffix(d.DelegatedName, "."+zone)):
			// Kept: the customer's CNAMEs point at it.
		case d.DelegatedName != "":
			return d, store.Invalid("zone", "%s is delegated under %s already; its customer's CNAMEs point there", d.Name, d.DelegatedName)
		case zone == "":
			return d, store.Invalid("zone", "name dkimd's delegated zone (serve --dns-zone) to delegate %s", d.Name)
		default:
			if d.DelegatedName, err = delegation.NewName(zone, nil); err != nil {
				return d, &store.FieldError{Field: "zone", Err: err}
			}
		}
		detail = append(detail, "delegated_name="+d.DelegatedName)
	}
	if r.RotateEvery > 0 {
		d.RotateEvery = r.RotateEvery
		detail = append(detail, "rotate_every="+r.RotateEvery.String())
	}
	if r.UpdateServer != "" {
		d.UpdateServer = r.UpdateServer
		detail = append(detail, "update_server="+r.UpdateServer)
	}
	if r.TSIGName != "" {
		d.TSIGName = r.TSIGName
		detail = append(detail, "tsig_name="+r.TSIGName)
	}
	if len(r.TSIGSecret) > 0 {
		// The lifecycle service holds the master key; the secret is
		// never kept open here.
		if d.TSIGSealed, err = s.o.Lifecycle.SealTSIG(d.Name, r.TSIGSecret); err != nil {
			return d, err
		}
		detail = append(detail, "tsig_secret=(new)")
	}
	if d, err = s.o.Store.UpdateDomain(ctx, d); err != nil {
		return d, err
	}
	return d, s.audit(ctx, a, "domain.publish", "domain", d.Name, d.Name, strings.Join(detail, " "))
}

// DelegationRecords gives the two CNAME records the customer of a
// delegated domain creates.
func (s *Service) DelegationRecords(ctx context.Context, a Actor, name string) (store.Domain, []delegation.CNAME, error) {
	d, err := s.GetDomain(ctx, a, name)
	if err != nil {
		return d, nil, err
	}
	recs, err := delegation.Records(d)
	if errors.Is(err, delegation.ErrNotDelegated) {
		return d, nil, store.Explain(store.ErrConflict, "Domain %s publishes %s, not delegated (dkimd domain set %s --publish delegated).", d.Name, d.Publish, d.Name)
	}
	return d, recs, err
}

// CheckDelegation checks a delegated domain's two CNAMEs at every
// authoritative server of its zone and the chains behind them. base gives
// the resolver and timeouts.
func (s *Service) CheckDelegation(ctx context.Context, a Actor, name string, base dnscheck.Options) ([]delegation.CNAMECheck, error) {
	d, _, err := s.DelegationRecords(ctx, a, name)
	if err != nil {
		return nil, err
	}
	ks, err := s.o.Store.ListKeys(ctx, store.KeyFilter{Domain: d.Name})
	if err != nil {
		return nil, err
	}
	return delegation.CheckCNAMEs(ctx, base, d, ks)
}
