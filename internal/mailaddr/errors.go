package mailaddr

import "errors"

// Failure classes of ParseDomain. Every error it returns is one of them
// (errors.Is), and also ErrInvalidDomain.
var (
	// ErrInvalidDomain is every ParseDomain failure.
	ErrInvalidDomain = errors.New("mailaddr: invalid domain name")
	// ErrEmpty: nothing but white space and a dot.
	ErrEmpty = errors.New("mailaddr: empty domain name")
	// ErrSyntax: characters or labels a host name cannot have (RFC 1123
	// §2.1, RFC 5890 §2.3.1 LDH labels), or an address literal.
	ErrSyntax = errors.New("mailaddr: not a host name")
	// ErrIDNA: not a valid internationalised name (RFC 5891, UTS #46).
	ErrIDNA = errors.New("mailaddr: not a valid internationalised domain name")
	// ErrTooLong: a label over 63 or a name over 253 bytes (RFC 1035
	// §2.3.4).
	ErrTooLong = errors.New("mailaddr: domain name too long")
	// ErrSingleLabel: a mail domain has at least two labels.
	ErrSingleLabel = errors.New("mailaddr: single-label domain name")
	// ErrIPAddress: the name is an IP address (a numeric top-level label).
	ErrIPAddress = errors.New("mailaddr: IP address, not a domain name")
)

// Failure classes of ParseAddress.
var (
	// ErrAddressSyntax: not a mailbox of RFC 5321 §4.1.2 that can be
	// passed on unchanged (also for a domain that does not parse: then the
	// ParseDomain class is in the chain too).
	ErrAddressSyntax = errors.New("mailaddr: malformed address")
	// ErrAddressRoute: the local part asks the server to route further
	// (% hack, bang path, an @ that was quoted).
	ErrAddressRoute = errors.New("mailaddr: address routes further")
	// ErrAddressLiteral: an address literal (u@[192.0.2.1]) where
	// AddressOptions did not allow one.
	ErrAddressLiteral = errors.New("mailaddr: address literal not allowed")
)

// Failure classes of ParseFromHeader, one per way a From header field can
// be unusable.
var (
	ErrFromMissing  = errors.New("mailaddr: From header holds no address")
	ErrFromMultiple = errors.New("mailaddr: From header holds several addresses")
	ErrFromInvalid  = errors.New("mailaddr: From header does not parse")
)

// parseError is a failure with its text for people (logs, API answers,
// SMTP log lines) and its classes for code.
type parseError struct {
	msg     string
	classes []error
}

func (e *parseError) Error() string   { return e.msg }
func (e *parseError) Unwrap() []error { return e.classes }

func fail(msg string, classes ...error) error { return &parseError{msg: msg, classes: classes} }

// explained carries a sentence for people beside the error for the log;
// the store package's Detail finds it (it looks for UserMessage). Error
// texts of the libraries below (net/mail's "mail: no angle-addr") stay in
// the log.
type explained struct {
	err error
	msg string
}

func (e *explained) Error() string       { return e.err.Error() }
func (e *explained) Unwrap() error       { return e.err }
func (e *explained) UserMessage() string { return e.msg }

func explain(err error, msg string) error { return &explained{err: err, msg: msg} }
