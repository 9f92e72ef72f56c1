package dkim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// AuthenticationResults renders an Authentication-Results field (RFC 8601)
// for the results of one message, ending in CRLF. authservID names the host
// that verified. With no results it says dkim=none.
func AuthenticationResults(authservID string, results []Result) string {
	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(authservID)
	if len(results) == 0 {
		b.WriteString(";\r\n dkim=none")
	}
	for i := range results {
		b.WriteString(";\r\n ")
		b.WriteString(results[i].resinfo())
	}
	b.WriteString("\r\n")
	return b.String()
}

// resinfo renders one "dkim=..." clause with the properties of RFC 6008 and
// RFC 8601 §2.7.1.
func (r *Result) resinfo() string {
	var parts []string
	parts = append(parts, "dkim="+string(r.Status))
	if r.Status == StatusPass {
		if r.KeyBits > 0 {
			parts = append(parts, fmt.Sprintf("(%d-bit key)", r.KeyBits))
		}
		if r.Signature != nil && r.Signature.BodyLength >= 0 {
			parts = append(parts, quoteReason(r.Reason()))
		}
	} else {
		parts = append(parts, quoteReason(r.Reason()))
	}
	if s := r.Signature; s != nil {
		parts = append(parts, "header.d="+propValue(s.Domain), "header.s="+propValue(s.Selector))
		if s.Identity != "" {
			parts = append(parts, "header.i="+propValue(s.Identity))
		}
		parts = append(parts, "header.a="+propValue(s.Algorithm))
		if len(s.b64) >= 8 {
			parts = append(parts, "header.b="+propValue(s.b64[:8]))
		}
	}
	return strings.Join(parts, " ")
}

// quoteReason renders reason="..." as an RFC 2045 quoted-string.
func quoteReason(s string) string {
	// The field must stay ASCII unless the message is SMTPUTF8 (RFC 6532):
	// spell out the section signs of error texts and clip's ellipsis.
	s = strings.NewReplacer("§", "section ", "…", "...").Replace(s)
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		if r > 0x7f {
			return '?'
		}
		return r
	}, s)
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `reason="` + s + `"`
}

// propValue quotes a property value unless it is a plain token or address
// (RFC 8601 §2.2 pvalue; an RFC 2045 token has no tspecials, so a header.b
// with "/" is quoted).
func propValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\r\n\"();\\,[]/=?<>:") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "").Replace(v) + `"`
}

// NetResolver looks up key records through a net.Resolver (the system's
// when Resolver is nil), mapping "no such name" and "no TXT record" to
// ErrKeyNotFound and anything else to a temporary failure.
type NetResolver struct {
	Resolver *net.Resolver
}

// LookupTXT implements Resolver.
func (n NetResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r := n.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	txts, err := r.LookupTXT(ctx, name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, errorf(ErrKeyNotFound, ": ", "%s", name)
	}
	if err == nil && len(txts) == 0 {
		return nil, errorf(ErrKeyNotFound, ": ", "%s", name)
	}
	return txts, err
}
