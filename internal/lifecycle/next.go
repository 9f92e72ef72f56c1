package lifecycle

import (
	"fmt"
	"time"

	"github.com/dkimd/dkimd/internal/store"
)

// What happens next
//
// The Rotate and Activate pages, and the CLI, say exactly what dkimd will
// do next with a new key, given the domain's settings: a domain that
// activates keys by itself (store.Domain.AutoActivate) has the monitor
// start signing with a pending key at its next check once every server
// serves the record; any other waits for an administrator.

// AfterRotate says what happens next to key, a new pending key made to
// replace old (nil when it replaces none), given whether the domain
// activates keys by itself and how often the monitor checks pending keys
// (zero means DefaultPendingInterval).
func AfterRotate(key store.Key, old *store.Key, autoActivate bool, pendingEvery time.Duration) string {
	if pendingEvery <= 0 {
		pendingEvery = DefaultPendingInterval
	}
	retire := ""
	if old != nil {
		retire = fmt.Sprintf(", and %s retires in the same step (it stops signing; keep its record published until its signatures have expired)", old.Selector)
	}
	if autoActivate {
		s := fmt.Sprintf("Publish the record of %s. When DNS serves it on every name server, dkimd starts signing with it by itself within about %s%s.",
			key.Selector, roughly(pendingEvery), retire)
		if old != nil {
			s += fmt.Sprintf(" Until then %s goes on signing.", old.Selector)
		}
		return s
	}
	s := fmt.Sprintf("Publish the record of %s, then activate it yourself once DNS serves it (“Check now” says when): this domain does not start signing with a new key by itself.", key.Selector)
	if old != nil {
		s += fmt.Sprintf(" %s goes on signing until then; when %s is activated, %s retires in the same step.", old.Selector, key.Selector, old.Selector)
	}
	return s
}

// AfterActivate says what activating the pending key does: replaced is
// the key it replaces (nil for none, or one no longer active), and
// settings give when the retired key may be revoked.
func (p Settings) AfterActivate(key store.Key, replaced *store.Key, now time.Time) string {
	if replaced == nil || replaced.State != store.KeyActive {
		return fmt.Sprintf("%s starts signing mail at once, beside the domain's other active keys, if any.", key.Selector)
	}
	retired := *replaced
	retired.State, retired.Retired = store.KeyRetired, now
	return fmt.Sprintf("%s starts signing mail at once, and %s, which it replaces, retires in the same step: it stops signing, and its record must stay published until its last signatures have expired (it is safe to revoke from %s).",
		key.Selector, replaced.Selector, p.SafeToRevoke(retired).UTC().Format("2006-01-02 15:04 MST"))
}

// roughly says a duration for people: "5 minutes", "1 hour".
func roughly(d time.Duration) string {
	switch {
	case d < 2*time.Minute:
		return "a minute"
	case d < 2*time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Round(time.Minute)/time.Minute))
	}
	return fmt.Sprintf("%d hours", int(d.Round(time.Hour)/time.Hour))
}
