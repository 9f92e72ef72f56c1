package delegation

import (
	"context"
	"fmt"
	"time"

	"github.com/dkimd/dkimd/internal/dnsupdate"
	"github.com/dkimd/dkimd/internal/store"
)

// Publisher puts key records into DNS for the rotation scheduler
// (lifecycle.Publisher): for a delegated domain it refreshes this node's
// zone from the store (other nodes follow on their own interval); for a
// domain published by UPDATE it sends the record to the domain's server.
type Publisher struct {
	// Refresh reloads this node's delegated zone; nil when this node
	// serves none.
	Refresh func(ctx context.Context) error
	// Secret opens a domain's sealed TSIG secret.
	Secret func(d store.Domain) (string, error)
	// TTL of the records sent by UPDATE; zero means 300 s.
	TTL uint32
	// Timeout of each UPDATE; zero means dnsupdate's default.
	Timeout time.Duration
}

// Publish implements lifecycle.Publisher.
func (p Publisher) Publish(ctx context.Context, d store.Domain, k store.Key) error {
	switch d.Publish {
	case store.PublishDelegated:
		return p.refresh(ctx)
	case store.PublishUpdate:
		c, err := p.client(d)
		if err != nil {
			return err
		}
		v, ok, err := Value(k)
		if err != nil {
			return err
		}
		if !ok {
			return c.Remove(ctx, k.RecordName())
		}
		ttl := p.TTL
		if ttl == 0 {
			ttl = 300
		}
		return c.SetTXT(ctx, k.RecordName(), v, ttl)
	}
	return fmt.Errorf("delegation: %s publishes %s: dkimd does not publish its records", d.Name, d.Publish)
}

// Unpublish implements lifecycle.Publisher.
func (p Publisher) Unpublish(ctx context.Context, d store.Domain, k store.Key) error {
	switch d.Publish {
	case store.PublishDelegated:
		return p.refresh(ctx)
	case store.PublishUpdate:
		c, err := p.client(d)
		if err != nil {
			return err
		}
		return c.Remove(ctx, k.RecordName())
	}
	return nil
}

func (p Publisher) refresh(ctx context.Context) error {
	if p.Refresh == nil {
		return nil
	}
	return p.Refresh(ctx)
}

func (p Publisher) client(d store.Domain) (*dnsupdate.Client, error) {
	if p.Secret == nil {
		return nil, fmt.Errorf("delegation: no TSIG secrets to update %s with", d.Name)
	}
	secret, err := p.Secret(d)
	if err != nil {
		return nil, err
	}
	return dnsupdate.New(dnsupdate.Options{Server: d.UpdateServer, TSIGName: d.TSIGName, TSIGSecret: secret, Timeout: p.Timeout})
}
