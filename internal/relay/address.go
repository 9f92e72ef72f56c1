package relay

import (
	"errors"
	"fmt"

	"github.com/dkimd/dkimd/internal/mailaddr"
)

// checkAddress parses an envelope address as go-smtp hands it over (source
// route already dropped, quoted local part already unquoted) with
// mailaddr.ParseAddress, the one parser of addresses, and classes a failure
// for the reply: the tricks that ask a server to relay further (percent
// hack, bang path, a quoted @, an IP literal for a user without
// ipLiterals) are errAddressTrick (550 5.7.1), anything else malformed is
// errAddressSyntax (553 5.1.3).
//
// A source route (@a,@b:u@c, RFC 5321 Appendix C) never reaches here:
// go-smtp drops the route before the session sees it, and only the final
// mailbox is checked, stored and relayed to, so the route can never be
// followed. An IP literal (u@[192.0.2.1]) is allowed only with ipLiterals,
// which callers grant only to users allowed foreign domains, since it names
// a host rather than a domain and skips MX routing.
func checkAddress(addr string, ipLiterals bool) (mailaddr.Address, error) {
	a, err := mailaddr.ParseAddress(addr, mailaddr.AddressOptions{IPLiterals: ipLiterals})
	switch {
	case err == nil:
		return a, nil
	case errors.Is(err, mailaddr.ErrAddressRoute), errors.Is(err, mailaddr.ErrAddressLiteral):
		return a, fmt.Errorf("%w: %w", errAddressTrick, err)
	default:
		return a, fmt.Errorf("%w: %w", errAddressSyntax, err)
	}
}

// clip shortens client-supplied text for a log line.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
