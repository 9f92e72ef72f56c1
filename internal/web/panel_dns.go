package web

import (
	"context"
	"fmt"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/store"
)

// DNSChecker gives an Options.Checker that runs dnscheck.Check with base
// for a key: the record should hold the key, or for a revoked key an
// empty p=. base.Domain, Selector, PublicKey and Expect are set per key;
// the zero base asks the system's resolver and every authoritative server.
func DNSChecker(base dnscheck.Options) func(ctx context.Context, k store.Key) (*dnscheck.Report, error) {
	return func(ctx context.Context, k store.Key) (*dnscheck.Report, error) {
		o := base
		o.Domain, o.Selector, o.PublicKey, o.Expect = k.Domain, k.Selector, nil, dnscheck.ExpectKey
		switch k.State {
		case store.KeyArchived:
			return nil, fmt.Errorf("%w: an archived key has no record to check", store.ErrConflict)
		case store.KeyRevoked:
			o.Expect = dnscheck.ExpectRevoked
		default:
			pub, err := admin.PublicKey(k)
			if err != nil {
				return nil, err
			}
			o.PublicKey = pub
		}
		return dnscheck.Check(ctx, o)
	}
}

// statusWords is a DNS status for people: a short label, and a class for
// its colour ("ok", "warn", "bad", "none").
type statusWords struct {
	Label string
	Class string
}

// dnsWords says a report's status in a few words.
func dnsWords(r *dnscheck.Report) statusWords {
	if r == nil {
		return statusWords{"Not checked yet", "none"}
	}
	label := map[dnscheck.Status]string{
		dnscheck.StatusMatch:           "Published, matches this key",
		dnscheck.StatusPublished:       "Published",
		dnscheck.StatusRevoked:         "Revoked in DNS (empty p=)",
		dnscheck.StatusStillPublished:  "Still published, should be revoked",
		dnscheck.StatusNotFound:        "Not found in DNS",
		dnscheck.StatusPropagating:     "Propagating",
		dnscheck.StatusWrongKey:        "A different key is published",
		dnscheck.StatusTruncated:       "Value cut short",
		dnscheck.StatusStrayCharacters: "Stray characters in the value",
		dnscheck.StatusMultipleRecords: "Several records at one name",
		dnscheck.StatusBadTags:         "Wrong or missing tag",
		dnscheck.StatusWeakKey:         "Published key too short",
		dnscheck.StatusCNAMEDangling:   "Alias (CNAME) to nowhere",
		dnscheck.StatusCNAMELoop:       "Aliases (CNAME) in a loop",
		dnscheck.StatusTemporary:       "DNS did not answer",
	}[r.Status]
	if label == "" {
		label = string(r.Status)
	}
	class := "bad"
	switch {
	case r.OK:
		class = "ok"
	case r.Status == dnscheck.StatusPropagating || r.Status == dnscheck.StatusTemporary || r.Status == dnscheck.StatusNotFound:
		class = "warn"
	}
	return statusWords{label, class}
}

// lastReport gives the last DNS check of a key made by this panel.
func (p *panel) lastReport(k store.Key) *dnscheck.Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reports[k.ID]
	// A report made for another state (say, before the key was revoked)
	// says nothing about what is expected now.
	if r != nil && (r.Expect == dnscheck.ExpectRevoked) != (k.State == store.KeyRevoked) {
		return nil
	}
	return r
}

func (p *panel) keepReport(k store.Key, r *dnscheck.Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reports[k.ID] = r
}
