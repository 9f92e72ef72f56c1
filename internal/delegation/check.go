package delegation

import (
	"context"
	"fmt"
	"strings"

	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/store"
)

// CNAMECheck is what DNS says about one of a delegated domain's CNAMEs.
type CNAMECheck struct {
	Selector string `json:"selector"`
	// Name is the customer's record name, Target where it should point.
	Name   string `json:"name"`
	Target string `json:"target"`
	// OK: every authoritative server of the customer's zone has the CNAME
	// pointing at Target, and, when a key sits at the selector, the chain
	// resolves to that key.
	OK bool `json:"ok"`
	// Problems say what is wrong, in words.
	Problems []string `json:"problems,omitempty"`
	// Report is the full check of the record through the chain.
	Report *dnscheck.Report `json:"report"`
}

// CheckCNAMEs checks both of a delegated domain's CNAMEs. ks are the
// domain's keys; the key not archived at each selector is the one the chain
// must lead to. base carries the resolver and the timeouts; its Domain,
// Selector, PublicKey and Expect are set here.
func CheckCNAMEs(ctx context.Context, base dnscheck.Options, d store.Domain, ks []store.Key) ([]CNAMECheck, error) {
	recs, err := Records(d)
	if err != nil {
		return nil, err
	}
	var out []CNAMECheck
	for _, rec := range recs {
		o := base
		o.Domain, o.Selector, o.PublicKey, o.Expect = d.Name, rec.Selector, nil, dnscheck.ExpectKey
		var key *store.Key
		for i := range ks {
			if strings.EqualFold(ks[i].Selector, rec.Selector) && ks[i].State != store.KeyArchived {
				key = &ks[i]
			}
		}
		if key != nil {
			if o.PublicKey, err = PublicKey(*key); err != nil {
				return nil, err
			}
			if key.State == store.KeyRevoked {
				o.Expect = dnscheck.ExpectRevoked
			}
		}
		r, err := dnscheck.Check(ctx, o)
		if err != nil {
			return nil, err
		}
		c := CNAMECheck{Selector: rec.Selector, Name: rec.Name, Target: rec.Target, Report: r}
		c.Problems = cnameProblems(r, rec)
		if key != nil && !r.OK {
			c.Problems = append(c.Problems, fmt.Sprintf("the chain does not lead to key %s (%s): %s", key.Selector, key.State, r.Summary))
		}
		c.OK = len(c.Problems) == 0
		out = append(out, c)
	}
	return out, nil
}

// cnameProblems looks at what each authoritative server of the customer's
// zone, and the resolver, said about the record name.
func cnameProblems(r *dnscheck.Report, rec CNAME) []string {
	var out []string
	look := func(where string, sr dnscheck.ServerResult) {
		switch {
		case sr.Skipped:
		case sr.Status.Temporary():
			out = append(out, fmt.Sprintf("%s: no answer for now (%s)", where, sr.Detail))
		case len(sr.CNAMEs) == 0:
			if len(sr.Records) > 0 {
				out = append(out, fmt.Sprintf("%s: %s is a TXT record, not the CNAME to %s: replace it", where, rec.Name, rec.Target))
			} else {
				out = append(out, fmt.Sprintf("%s: no CNAME at %s: create it, pointing at %s", where, rec.Name, rec.Target))
			}
		case !strings.EqualFold(sr.CNAMEs[0], rec.Target):
			out = append(out, fmt.Sprintf("%s: the CNAME at %s points at %s instead of %s", where, rec.Name, sr.CNAMEs[0], rec.Target))
		}
	}
	asked := 0
	for _, sr := range r.Servers {
		if strings.EqualFold(sr.Name, rec.Name) {
			asked++
			look(fmt.Sprintf("name server %s (%s)", sr.Server, sr.Address), sr)
		}
	}
	if asked == 0 {
		look("the resolver", r.Resolver)
	}
	return out
}
