package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/store"
)

// Level says how much a key's or a domain's status needs attention; the
// panel gives each its colour, the same on every page.
type Level string

// The levels, from none to the worst.
const (
	// LevelOK: nothing to do.
	LevelOK Level = "ok"
	// LevelInfo: a step to take (activate, revoke, archive); nothing is
	// wrong.
	LevelInfo Level = "info"
	// LevelWarn: something is wrong or weak, but mail still verifies
	// (amber).
	LevelWarn Level = "warn"
	// LevelBad: mail signed now fails DKIM (red).
	LevelBad Level = "bad"
)

// Rank orders levels: LevelOK is 0, LevelBad 3.
func (l Level) Rank() int { return slices.Index([]Level{LevelOK, LevelInfo, LevelWarn, LevelBad}, l) }

// recordProblem says what is wrong with a record, after "its record ".
func recordProblem(c store.DNSCheck) string {
	switch dnscheck.Status(c.Status) {
	case dnscheck.StatusNotFound:
		return "is missing"
	case dnscheck.StatusWrongKey:
		return "holds another key"
	case dnscheck.StatusTruncated:
		return "is cut short"
	case dnscheck.StatusStrayCharacters:
		return "holds stray characters"
	case dnscheck.StatusMultipleRecords:
		return "is one of several records at its name"
	case dnscheck.StatusPropagating:
		return "is missing on some name servers"
	case dnscheck.StatusRevoked:
		return "is revoked (empty p=)"
	}
	return "is not served as it should be (" + c.Status + ")"
}

// level sets the status's level and headline: the one thing to say about
// the key, the worst first. Settings.Status calls it once it has the
// warnings.
func (s *Status) level() {
	k, last := s.Key, s.LastCheck
	switch {
	case s.Alert:
		s.Level = LevelBad
		s.Headline = fmt.Sprintf("Mail signed with %s fails DKIM: its record %s", k.Selector, recordProblem(*last))
		return
	case k.State == store.KeyActive && last == nil:
		s.Level = LevelWarn
		s.Headline = fmt.Sprintf("%s signs, but its record was never checked in DNS: receivers may not find it", k.Selector)
		return
	case k.State == store.KeyActive && Temporary(*last):
		s.Level = LevelWarn
		s.Headline = fmt.Sprintf("DNS did not answer the last check of %s's record: it may be missing", k.Selector)
		return
	}
	for _, w := range s.Warnings {
		if w.Code == WarnWeak || w.Code == WarnOld {
			s.Level, s.Headline = LevelWarn, fmt.Sprintf("Key %s: %s", k.Selector, w.Message)
			return
		}
	}
	if len(s.Warnings) > 0 {
		s.Level, s.Headline = LevelInfo, fmt.Sprintf("Key %s: %s", k.Selector, s.Warnings[0].Message)
		return
	}
	s.Level = LevelOK
}

// SignatureProblem says what a signature made now with the key meets at
// receivers, from its latest stored check (no DNS query): bad when it
// fails for certain, a message when it may fail; "" when the record was
// last seen as it should be.
func (s Status) SignatureProblem() (bad bool, msg string) {
	switch {
	case s.Alert:
		return true, s.Headline
	case s.LastCheck == nil:
		return false, fmt.Sprintf("the record of %s was never checked in DNS: the signature fails if receivers do not find it", s.Key.Selector)
	case Temporary(*s.LastCheck):
		return false, fmt.Sprintf("DNS did not answer the last check of %s's record: the signature fails if it is missing", s.Key.Selector)
	}
	return false, ""
}

// DomainStatus is a domain's one status: the worst current problem of its
// keys, said the same way on every page that lists the domain.
type DomainStatus struct {
	Domain string `json:"domain"`
	// Level is the worst problem's; Message says it in one sentence.
	Level   Level  `json:"level"`
	Message string `json:"message"`
	// Active and Pending count the keys in those states.
	Active  int `json:"active"`
	Pending int `json:"pending"`
	// Keys are the statuses it was computed from.
	Keys []Status `json:"keys"`
}

// SumUp gives a domain's status from the statuses of its keys. Mail signed now
// fails DKIM (LevelBad) only when an active key's record is wrong and no
// active key's record was last seen right: receivers accept a message with
// one valid signature among several (RFC 6376 §6.1).
func SumUp(domain string, keys []Status) DomainStatus {
	ds := DomainStatus{Domain: domain, Level: LevelOK, Keys: keys}
	var active, broken, good []string
	for _, st := range keys {
		switch st.Key.State {
		case store.KeyActive:
			ds.Active++
			active = append(active, st.Key.Selector)
			if st.Alert {
				broken = append(broken, st.Key.Selector)
			} else if st.LastCheck != nil && st.LastCheck.OK {
				good = append(good, st.Key.Selector)
			}
		case store.KeyPending:
			ds.Pending++
		}
	}
	worst := func() *Status {
		var w *Status
		for i := range keys {
			if keys[i].Level != LevelOK && (w == nil || keys[i].Level.Rank() > w.Level.Rank()) {
				w = &keys[i]
			}
		}
		return w
	}
	switch {
	case ds.Active == 0 && ds.Pending > 0:
		ds.Level = LevelWarn
		ds.Message = "No active key: mail goes out unsigned until a pending key is published and active"
	case ds.Active == 0:
		ds.Level = LevelWarn
		ds.Message = "No active key: mail goes out unsigned; generate a key pair"
	case len(broken) > 0 && len(good) == 0:
		ds.Level = LevelBad
		var why []string
		for _, st := range keys {
			if st.Alert {
				why = append(why, fmt.Sprintf("the record of %s %s", st.Key.Selector, recordProblem(*st.LastCheck)))
			}
		}
		ds.Message = "Mail signed now fails DKIM: " + strings.Join(why, ", and ")
	case len(broken) > 0:
		ds.Level = LevelWarn
		ds.Message = fmt.Sprintf("Signatures made with %s fail, but mail still verifies with %s", strings.Join(broken, ", "), strings.Join(good, ", "))
	default:
		if w := worst(); w != nil {
			ds.Level, ds.Message = w.Level, w.Headline
		} else {
			ds.Message = "Mail is signed with " + strings.Join(active, " and ") + ", whose record DNS serves"
			if len(active) > 1 {
				ds.Message = "Mail is signed with " + strings.Join(active, " and ") + ", whose records DNS serves"
			}
		}
	}
	return ds
}

// DomainStatus gives a domain's status (canonical name), from the stored
// checks of its keys: no DNS query.
func (s *Service) DomainStatus(ctx context.Context, domain string) (DomainStatus, error) {
	sts, err := s.Status(ctx, domain)
	if err != nil {
		return DomainStatus{}, err
	}
	return SumUp(domain, sts), nil
}
