package dkim

import "crypto"

// Publication is a key record in the forms people publish it: a DNS
// provider's web form wants Host and Value; a zone file wants Zone, where the
// value is split into strings of at most 255 bytes.
type Publication struct {
	// Name is the fully qualified record name, without a final dot.
	Name string `json:"name"`
	// Host is Name relative to the domain's zone: "<selector>._domainkey".
	Host string `json:"host"`
	// Value is the whole record value as one string.
	Value string `json:"value"`
	// Strings is Value cut into TXT character-strings of at most 255 bytes.
	Strings []string `json:"strings"`
	// Zone is a zone-file line carrying the record.
	Zone string `json:"zone"`
}

// Publish renders the record for a public key at selector and domain.
func Publish(selector, domain string, pub crypto.PublicKey) (*Publication, error) {
	value, err := RecordValue(pub)
	if err != nil {
		return nil, err
	}
	return PublishValue(selector, domain, value), nil
}

// PublishValue renders a given record value (for instance a revoked key's
// "v=DKIM1; k=rsa; p=") at selector and domain.
func PublishValue(selector, domain, value string) *Publication {
	name := RecordName(selector, domain)
	return &Publication{
		Name:    name,
		Host:    selector + "._domainkey",
		Value:   value,
		Strings: SplitTXT(value),
		Zone:    ZoneLine(name, value),
	}
}
