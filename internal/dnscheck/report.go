package dnscheck

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a Check. It is stable JSON for the API and
// scripts; WriteText renders it for people.
type Report struct {
	// Domain, Selector and Name (the record name) say what was checked.
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	Name     string `json:"name"`
	// Expect is the state asked for: "key" or "revoked".
	Expect Expect `json:"expect"`
	// Expected is the value that should be published, when known (a key
	// was given, or a revoked key is expected).
	Expected string `json:"expected,omitempty"`
	// Status sums up every server; OK says whether it is the state
	// expected everywhere.
	Status Status `json:"status"`
	OK     bool   `json:"ok"`
	// Summary is one line for people; Advice says what to do, if anything.
	Summary string   `json:"summary"`
	Advice  []string `json:"advice,omitempty"`
	// CNAMEChain is the record name and the aliases the resolver
	// followed from it, in order; empty when the name is no alias.
	CNAMEChain []string `json:"cname_chain,omitempty"`
	// Resolver is what the recursive resolver answered.
	Resolver ServerResult `json:"resolver"`
	// Zone is the zone holding the record name; Servers are the answers
	// of each address of each of its authoritative name servers, followed
	// by those of the zones CNAMEs lead to.
	Zone    string         `json:"zone,omitempty"`
	Servers []ServerResult `json:"servers,omitempty"`
	// CheckedAt is when the check ran, in UTC.
	CheckedAt time.Time `json:"checked_at"`
}

// ServerResult is what one server answered.
type ServerResult struct {
	// Name is the name asked for: the record name, or an alias target.
	Name string `json:"name"`
	// Server is the name server's host name, or "resolver".
	Server string `json:"server"`
	// Address is the HOST:PORT asked.
	Address string `json:"address,omitempty"`
	// Status and Detail say what the answer means.
	Status Status `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Rcode is the DNS response code (NOERROR, NXDOMAIN), when one came.
	Rcode string `json:"rcode,omitempty"`
	// CNAMEs are the aliases in the answer, from Name on.
	CNAMEs []string `json:"cnames,omitempty"`
	// Target is set when the answer is an alias into another zone, whose
	// servers are then asked (Status is theirs, summed up).
	Target string `json:"target,omitempty"`
	// Records are the TXT records at the end of the aliases.
	Records []TXTRecord `json:"records,omitempty"`
	// TCP says the answer came over TCP after a truncated UDP answer.
	TCP bool `json:"tcp,omitempty"`
	// Skipped says this machine has no route to the address (no IPv6,
	// say): the result does not count towards the Report's Status.
	Skipped bool `json:"skipped,omitempty"`
	// Error is the DNS or network error, for StatusTemporary.
	Error string `json:"error,omitempty"`

	advice []string
	// via marks an alias result whose Status sums up its target's
	// servers; those count instead.
	via bool
}

// TXTRecord is one TXT record as published.
type TXTRecord struct {
	// Value is the strings joined, as receivers read it (RFC 6376
	// §3.6.2.2); Strings are the character-strings as they are in DNS.
	Value   string   `json:"value"`
	Strings []string `json:"strings"`
	TTL     uint32   `json:"ttl"`
}

// ExitCode is the exit status for the command line: 0 when the record is
// in the expected state on every server, 1 otherwise (the dkimd convention:
// 1 for a failure or a negative result).
func (r *Report) ExitCode() int {
	if r.OK {
		return 0
	}
	return 1
}

// leaves are the results that count towards the summary: the resolver's
// and each authoritative answer that is not an alias into another zone.
func (r *Report) leaves() []*ServerResult {
	out := []*ServerResult{&r.Resolver}
	for i := range r.Servers {
		if s := &r.Servers[i]; !s.via && !s.Skipped {
			out = append(out, s)
		}
	}
	return out
}

// badOrder ranks problems for the summary when servers disagree and none
// is right: the most specific problem first.
var badOrder = []Status{
	StatusStillPublished, StatusWrongKey, StatusMultipleRecords, StatusStrayCharacters,
	StatusTruncated, StatusBadTags, StatusWeakKey, StatusCNAMELoop, StatusCNAMEDangling,
	StatusRevoked, StatusNotFound, StatusPublished, StatusMatch,
}

// aggregate sums up a set of results: the expected state if all that
// answered agree on it, StatusPropagating if some do, else the worst
// problem; StatusTemporary if none answered or the rest are right.
func (c *checker) aggregate(rs []ServerResult) (Status, []*ServerResult) {
	var ptrs []*ServerResult
	for i := range rs {
		if !rs[i].via && !rs[i].Skipped {
			ptrs = append(ptrs, &rs[i])
		}
	}
	st, _, _, _ := c.classify(ptrs)
	return st, ptrs
}

// classify splits results into right, wrong and failed, and gives the
// overall status.
func (c *checker) classify(rs []*ServerResult) (st Status, good, bad, temp []*ServerResult) {
	e := c.exp.expect
	for _, s := range rs {
		switch {
		case s.Status.Temporary():
			temp = append(temp, s)
		case s.Status.good(e):
			good = append(good, s)
		default:
			bad = append(bad, s)
		}
	}
	switch {
	case len(good) == 0 && len(bad) == 0:
		return StatusTemporary, good, bad, temp
	case len(bad) == 0 && len(temp) > 0:
		return StatusTemporary, good, bad, temp
	case len(bad) == 0:
		return good[0].Status, good, bad, temp
	case len(good) == 1 && good[0].Server == "resolver":
		// Only the resolver's cache still has it right: the authoritative
		// servers, which are the truth, have all changed.
		return worst(bad).Status, good, bad, temp
	case len(good) > 0:
		return StatusPropagating, good, bad, temp
	}
	return worst(bad).Status, good, bad, temp
}

// worst picks the result to explain among wrong ones, preferring the
// authoritative servers' view to the resolver's, which may be cached.
func worst(bad []*ServerResult) *ServerResult {
	cands := bad
	if len(bad) > 1 && bad[0].Server == "resolver" {
		cands = bad[1:]
	}
	best := cands[0]
	for _, s := range cands[1:] {
		if slices.Index(badOrder, s.Status) < slices.Index(badOrder, best.Status) {
			best = s
		}
	}
	return best
}

// summarize sets the Report's Status, OK, Summary and Advice.
func (c *checker) summarize(r *Report) {
	leaves := r.leaves()
	st, good, bad, temp := c.classify(leaves)
	r.Status, r.OK = st, st.good(r.Expect)
	var rep *ServerResult
	switch {
	case len(bad) > 0 && st != StatusPropagating:
		rep = worst(bad)
	case len(good) > 0:
		rep = good[0]
	default:
		rep = temp[0]
	}
	r.Summary = fmt.Sprintf("%s: %s", r.Name, c.phrase(r, st, rep, len(good), len(leaves)))
	switch st {
	case StatusPropagating:
		r.Advice = append(r.Advice, propagation(good, bad)...)
		r.Advice = append(r.Advice, worst(bad).advice...)
	case StatusTemporary:
		var names []string
		for _, s := range temp {
			names = append(names, fmt.Sprintf("%s (%s): %s", s.Server, s.Address, s.Detail))
		}
		r.Advice = append(r.Advice,
			"DNS did not answer: "+strings.Join(names, "; ")+".",
			"This says nothing about the record itself. Check again in a few minutes; if it goes on, the zone's name servers may be down or misconfigured (a name server that does not serve the zone, or broken DNSSEC).")
	default:
		r.Advice = append(r.Advice, rep.advice...)
		if len(bad) > 1 {
			if d := disagreement(bad); d != "" {
				r.Advice = append(r.Advice, d)
			}
		}
		if len(good) > 0 && !r.OK {
			r.Advice = append(r.Advice, "The resolver still gives the expected record from its cache, but no authoritative server does any more: it will stop when the cache expires.")
		}
		if len(temp) > 0 {
			r.Advice = append(r.Advice, count(len(temp), "server did not answer; it was", "servers did not answer; they were")+" left out.")
		}
	}
	for _, s := range r.Servers {
		if s.Skipped {
			r.Advice = append(r.Advice, fmt.Sprintf("%s (%s) is not reachable from this machine and was not checked.", s.Server, s.Address))
		}
	}
}

func (c *checker) phrase(r *Report, st Status, rep *ServerResult, ngood, n int) string {
	everywhere := "on the resolver"
	if n > 1 {
		everywhere = fmt.Sprintf("on the resolver and all %d authoritative servers", n-1)
	}
	switch st {
	case StatusMatch:
		return fmt.Sprintf("publishes the expected key (%s) %s", rep.Detail, everywhere)
	case StatusPublished:
		return fmt.Sprintf("publishes an %s %s (not compared with any key)", rep.Detail, everywhere)
	case StatusRevoked:
		if r.Expect == ExpectRevoked {
			return "revoked (empty p=) " + everywhere + ", as expected"
		}
		return "the key is revoked (empty p=): mail signed with it fails to verify"
	case StatusStillPublished:
		return "still publishes the key, which should be revoked (empty p=)"
	case StatusNotFound:
		return "no DKIM record (" + rep.Detail + ")"
	case StatusPropagating:
		return fmt.Sprintf("right on %d of %d servers; the others are not updated yet", ngood, n)
	case StatusWrongKey:
		return "a different key is published (" + rep.Detail + ")"
	case StatusTruncated:
		return "the value is cut short (" + rep.Detail + ")"
	case StatusStrayCharacters:
		return "stray characters were pasted into the value (" + rep.Detail + ")"
	case StatusMultipleRecords:
		return "several DKIM records at one name; there must be one"
	case StatusBadTags:
		return "a tag is wrong or missing (" + rep.Detail + ")"
	case StatusWeakKey:
		return "the published RSA key is too short (" + rep.Detail + ")"
	case StatusCNAMEDangling:
		return "an alias (CNAME) to nowhere (" + rep.Detail + ")"
	case StatusCNAMELoop:
		return rep.Detail
	}
	return "could not be checked: DNS did not answer (" + rep.Detail + ")"
}

// propagation says which servers have the record and which do not yet.
func propagation(good, bad []*ServerResult) []string {
	var have, lag []string
	for _, s := range good {
		have = append(have, serverName(s))
	}
	for _, s := range bad {
		lag = append(lag, fmt.Sprintf("%s (%s)", serverName(s), s.Status.Words()))
	}
	out := []string{
		fmt.Sprintf("Right on: %s. Not yet on: %s.", strings.Join(have, ", "), strings.Join(lag, ", ")),
	}
	if len(bad) == 1 && bad[0].Server == "resolver" {
		out = append(out, fmt.Sprintf("Every authoritative server is right; the resolver still answers from its cache, for up to %d seconds (the record's TTL) or the negative-cache time of the zone. Nothing to do but wait.", bad[0].ttl()))
	} else {
		out = append(out, "DNS changes reach every name server within minutes, or hours for some providers: check again later. If a server never catches up, its copy of the zone is stale: check the zone transfers to it, or update it by hand.")
	}
	return out
}

// disagreement lists the servers' different views, when they differ.
func disagreement(bad []*ServerResult) string {
	byStatus := map[Status][]string{}
	var order []Status
	for _, s := range bad {
		if _, ok := byStatus[s.Status]; !ok {
			order = append(order, s.Status)
		}
		byStatus[s.Status] = append(byStatus[s.Status], serverName(s))
	}
	if len(order) < 2 {
		return ""
	}
	var parts []string
	for _, st := range order {
		parts = append(parts, fmt.Sprintf("%s: %s", st.Words(), strings.Join(byStatus[st], ", ")))
	}
	return "The servers do not agree (" + strings.Join(parts, "; ") + "): a change may still be on its way."
}

// count gives "1 server …" or "3 servers …": one and other are the
// words after the number in the singular and the plural.
func count(n int, one, other string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, other)
}

func serverName(s *ServerResult) string {
	if s.Server == "resolver" || s.Address == "" {
		return s.Server
	}
	return s.Server + " " + s.Address
}

// WriteText renders the report for people, as aligned text.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ok := "not OK"
	if r.OK {
		ok = "OK"
	}
	fmt.Fprintf(tw, "Record:\t%s\n", r.Name)
	fmt.Fprintf(tw, "Status:\t%s (%s)\n", r.Status, ok)
	fmt.Fprintf(tw, "Summary:\t%s\n", r.Summary)
	if len(r.CNAMEChain) > 0 {
		fmt.Fprintf(tw, "CNAME:\t%s\n", strings.Join(r.CNAMEChain, " → "))
	}
	if r.Zone != "" {
		fmt.Fprintf(tw, "Zone:\t%s\n", r.Zone)
	}
	if r.Expected != "" {
		fmt.Fprintf(tw, "Expected:\t%s\n", r.Expected)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	all := append([]ServerResult{r.Resolver}, r.Servers...)
	aliased := false
	for _, s := range all {
		aliased = aliased || !strings.EqualFold(strings.TrimSuffix(s.Name, "."), r.Name)
	}
	if aliased {
		fmt.Fprint(tw, "NAME\t")
	}
	fmt.Fprint(tw, "SERVER\tADDRESS\tSTATUS\tDETAIL\n")
	for _, s := range all {
		if aliased {
			fmt.Fprintf(tw, "%s\t", strings.TrimSuffix(s.Name, "."))
		}
		detail := s.Detail
		if s.TCP {
			detail += " (over TCP)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Server, dash(s.Address), s.Status, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// Each distinct value seen, once, with who gave it: strings quoted as
	// in a zone file, so that a cut at 255 or a pasted quote shows.
	var values []string
	seenBy := map[string][]string{}
	for _, s := range all {
		for _, rec := range s.Records {
			v := quoteStrings(rec.Strings)
			if _, ok := seenBy[v]; !ok {
				values = append(values, v)
			}
			seenBy[v] = append(seenBy[v], s.Server)
		}
	}
	if len(values) > 0 {
		fmt.Fprintln(w, "\nValues seen:")
		for _, v := range values {
			fmt.Fprintf(w, "  %s:\n    %s\n", strings.Join(slices.Compact(seenBy[v]), ", "), v)
		}
	}
	if len(r.Advice) > 0 {
		fmt.Fprintln(w, "\nWhat to do:")
		for _, a := range r.Advice {
			fmt.Fprintf(w, "  - %s\n", a)
		}
	}
	_, err := fmt.Fprintf(w, "\nChecked at %s.\n", r.CheckedAt.Format(time.RFC3339))
	return err
}

func quoteStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
