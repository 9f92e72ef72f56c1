package dnscheck

// Status is the outcome of a check, for one server or for the whole. Its
// values are stable strings, part of the JSON API.
type Status string

// The outcomes of a check.
const (
	// StatusMatch: the record holds the expected key (or, when a revoked
	// key is expected, StatusRevoked is the match instead).
	StatusMatch Status = "match"
	// StatusPublished: a valid key record is published; no key was given to
	// compare it with.
	StatusPublished Status = "published"
	// StatusRevoked: the record has an empty p=, which revokes the key
	// (RFC 6376 §3.6.1). Right when a revoked key is expected.
	StatusRevoked Status = "revoked"
	// StatusStillPublished: a revoked key is expected but the record still
	// holds the key.
	StatusStillPublished Status = "still_published"
	// StatusNotFound: the name does not exist (NXDOMAIN) or has no DKIM
	// TXT record.
	StatusNotFound Status = "not_found"
	// StatusPropagating: some authoritative servers (or the resolver, from
	// its cache) give the expected record and others do not yet.
	StatusPropagating Status = "propagating"
	// StatusWrongKey: a valid key is published, but not the expected one.
	StatusWrongKey Status = "wrong_key"
	// StatusTruncated: the value was cut short (a DNS host that stops at
	// 255 characters, an incomplete paste): p= does not decode to a key.
	StatusTruncated Status = "truncated"
	// StatusStrayCharacters: quotes, backslashes, parentheses or non-ASCII
	// spaces were pasted into the value along with it.
	StatusStrayCharacters Status = "stray_characters"
	// StatusMultipleRecords: more than one DKIM TXT record at the name;
	// receivers pick one at random or fail (RFC 6376 §3.6.2.2).
	StatusMultipleRecords Status = "multiple_records"
	// StatusBadTags: a tag is wrong or missing: v= not DKIM1 or not first,
	// no p=, k= that does not fit the key in p=, an unknown k=, s= or h=
	// that exclude email signing with sha256, or a malformed tag list.
	StatusBadTags Status = "bad_tags"
	// StatusWeakKey: the published RSA key is shorter than 1024 bits and
	// receivers ignore it (RFC 8301 §3.2).
	StatusWeakKey Status = "weak_key"
	// StatusCNAMEDangling: the name is an alias (CNAME) to a name that does
	// not exist or has no TXT record.
	StatusCNAMEDangling Status = "cname_dangling"
	// StatusCNAMELoop: the aliases lead in a circle, or through more
	// CNAMEs than Options.MaxCNAMEs.
	StatusCNAMELoop Status = "cname_loop"
	// StatusTemporary: DNS did not answer usefully for now (SERVFAIL,
	// REFUSED, timeout, network error). It says nothing about the record;
	// check again later.
	StatusTemporary Status = "temporary_failure"
)

// Temporary reports whether the status is a DNS failure that says nothing
// about the record itself.
func (s Status) Temporary() bool { return s == StatusTemporary }

// good reports whether s is the state wanted under expectation e.
func (s Status) good(e Expect) bool {
	if e == ExpectRevoked {
		return s == StatusRevoked
	}
	return s == StatusMatch || s == StatusPublished
}

// String returns the status's stable name.
func (s Status) String() string { return string(s) }

// Words says what the status means in a few words for people, where String
// gives the stable code for scripts: "no record" for StatusNotFound.
func (s Status) Words() string {
	switch s {
	case StatusMatch:
		return "the expected key"
	case StatusPublished:
		return "a key record"
	case StatusRevoked:
		return "revoked"
	case StatusStillPublished:
		return "still publishes the key"
	case StatusNotFound:
		return "no record"
	case StatusPropagating:
		return "not updated everywhere yet"
	case StatusWrongKey:
		return "a different key"
	case StatusTruncated:
		return "a value cut short"
	case StatusStrayCharacters:
		return "stray characters in the value"
	case StatusMultipleRecords:
		return "several records"
	case StatusBadTags:
		return "a wrong or missing tag"
	case StatusWeakKey:
		return "a key too short"
	case StatusCNAMEDangling:
		return "an alias to nowhere"
	case StatusCNAMELoop:
		return "aliases in a loop"
	case StatusTemporary:
		return "no answer"
	}
	return string(s)
}
