package panel

import (
	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/store"
)

// statusWords is a DNS status for people: a short label, and a class for
// its colour ("ok", "warn", "bad", "none").
type statusWords struct {
	Label string
	Class string
}

// dnsWords says a stored check's outcome in a few words; nil is a key
// never checked.
func dnsWords(c *store.DNSCheck) statusWords {
	if c == nil {
		return statusWords{"Not checked yet", "none"}
	}
	st := dnscheck.Status(c.Status)
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
	}[st]
	if label == "" {
		label = c.Status
	}
	class := "bad"
	switch {
	case c.OK:
		class = "ok"
	case st == dnscheck.StatusPropagating || st == dnscheck.StatusTemporary || st == dnscheck.StatusNotFound:
		class = "warn"
	}
	return statusWords{label, class}
}

// dnsHint says what to do about a check's outcome. The stored check keeps
// only the status and summary (not dnscheck's per-server advice), so the
// hint is by status; the summary names the servers.
func dnsHint(c *store.DNSCheck) string {
	if c == nil || c.OK {
		return ""
	}
	return map[dnscheck.Status]string{
		dnscheck.StatusNotFound:        "Add the TXT record above at your DNS provider, exactly at the host name shown, then check again. A new record takes from a minute to a few hours to show.",
		dnscheck.StatusPropagating:     "Some name servers serve the record and others not yet: wait a few minutes and check again.",
		dnscheck.StatusWrongKey:        "The record at this name holds another key: replace its value with the one above.",
		dnscheck.StatusStillPublished:  "Replace the record's value with the one above (an empty p=), so that the key's signatures stop verifying.",
		dnscheck.StatusTruncated:       "The value was cut short: paste it whole, or use the zone-file form if your provider cuts at 255 characters.",
		dnscheck.StatusStrayCharacters: "Quotes or other characters were pasted with the value: use the copy button and paste it again.",
		dnscheck.StatusMultipleRecords: "Keep one DKIM record at this name and remove the others: receivers pick one at random or fail.",
		dnscheck.StatusBadTags:         "The record's tags are wrong: replace its value with the one above.",
		dnscheck.StatusWeakKey:         "The published key is too short for receivers: publish the record above.",
		dnscheck.StatusCNAMEDangling:   "The name is an alias to a name without the record: fix the alias, or publish the TXT record at this name instead.",
		dnscheck.StatusCNAMELoop:       "The aliases lead in a circle: publish the TXT record at this name instead.",
		dnscheck.StatusTemporary:       "DNS did not answer: this says nothing about the record. Check again in a moment.",
	}[dnscheck.Status(c.Status)]
}
