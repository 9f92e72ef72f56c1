package relay

import (
	"context"
	"errors"
	"log/slog"

	"github.com/emersion/go-smtp"
)

// Failure classes inside a session. Each is wrapped with details for the
// log; reply maps the class to what the client is told.
var (
	errAuthRequired    = errors.New("relay: authentication required")
	errNotAuthorised   = errors.New("relay: user may not relay")
	errAddressTrick    = errors.New("relay: address asks for further relaying")
	errAddressSyntax   = errors.New("relay: malformed address")
	errSenderDomain    = errors.New("relay: envelope sender domain not permitted")
	errFromDomain      = errors.New("relay: From domain not permitted")
	errIdentity        = errors.New("relay: identity header missing or ambiguous")
	errBareLineEnd     = errors.New("relay: bare CR or LF in message")
	errMalformed       = errors.New("relay: malformed message header")
	errHeaderTooLarge  = errors.New("relay: message header too large")
	errRateLimited     = errors.New("relay: message rate limit reached")
	errSigning         = errors.New("relay: signature due but not made")
	errLookup          = errors.New("relay: store lookup failed")
	errBuffer          = errors.New("relay: temporary message buffer failure")
	errQueue           = errors.New("relay: queue did not store the message")
	errQueueRefused    = errors.New("relay: queue refused the message")
	errAuthFailed      = errors.New("relay: authentication failed")
	errAuthTemporary   = errors.New("relay: authentication could not be checked")
	errAuthLocked      = errors.New("relay: too many authentication failures")
	errAuthSyntax      = errors.New("relay: malformed AUTH exchange")
	errNoValidRcpt     = errors.New("relay: no recipient")
	errDiskFull        = errors.New("relay: not enough free disk space for a message")
	errUnsupportedAuth = errors.New("relay: unknown AUTH mechanism")
)

// replies gives the answer for each failure class (RFC 5321 §4.2, RFC 3463
// enhanced codes). The text is fixed: never an error's text to the peer.
var replies = []struct {
	err   error
	reply *smtp.SMTPError
}{
	{errAuthRequired, rep(530, 5, 7, 0, "Authentication required")},
	{errNotAuthorised, rep(550, 5, 7, 1, "Relaying denied")},
	{errAddressTrick, rep(550, 5, 7, 1, "Relaying denied: address routing is not accepted")},
	{errAddressSyntax, rep(553, 5, 1, 3, "Malformed address")},
	{errSenderDomain, rep(550, 5, 7, 1, "Sender address domain not permitted for this user")},
	{errFromDomain, rep(550, 5, 7, 1, "From header domain not permitted for this user")},
	{errIdentity, rep(550, 5, 7, 1, "Identity header missing or given more than once")},
	{errBareLineEnd, rep(550, 5, 6, 0, "Bare CR or LF in message; use CRLF line ends")},
	{errMalformed, rep(550, 5, 6, 0, "Malformed message header (exactly one From field is required)")},
	{errHeaderTooLarge, rep(552, 5, 3, 4, "Message header too large")},
	{errRateLimited, rep(451, 4, 7, 1, "Message rate limit reached, try again later")},
	{errSigning, rep(451, 4, 3, 0, "Message cannot be signed now, try again later")},
	{errLookup, rep(451, 4, 3, 0, "Temporary local problem, try again later")},
	{errBuffer, rep(451, 4, 3, 0, "Temporary local problem, try again later")},
	{errQueue, rep(451, 4, 3, 0, "Message not queued, try again later")},
	{errQueueRefused, rep(554, 5, 6, 0, "Message refused")},
	{errAuthFailed, rep(535, 5, 7, 8, "Authentication credentials invalid")},
	{errAuthTemporary, rep(454, 4, 7, 0, "Temporary authentication failure")},
	{errAuthLocked, rep(421, 4, 7, 0, "Too many authentication failures, closing connection")},
	{errAuthSyntax, rep(501, 5, 5, 2, "Malformed AUTH exchange")},
	{errNoValidRcpt, rep(554, 5, 5, 1, "No valid recipients")},
	{errDiskFull, rep(452, 4, 3, 1, "Insufficient system storage, try again later")},
	{errUnsupportedAuth, rep(504, 5, 5, 4, "Unrecognized authentication type")},
	{smtp.ErrDataTooLarge, smtp.ErrDataTooLarge},
	{smtp.ErrTooLongLine, rep(500, 5, 5, 2, "Line too long")},
}

func rep(code, a, b, c int, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{a, b, c}, Message: msg}
}

// replyTemporary is the answer to anything unknown: the client tries again
// and the log says what happened.
var replyTemporary = rep(451, 4, 3, 0, "Temporary local problem, try again later")

// reply is the one mapper from errors to SMTP replies.
func reply(err error) *smtp.SMTPError {
	for _, r := range replies {
		if errors.Is(err, r.err) {
			return r.reply
		}
	}
	return replyTemporary
}

// fail logs err once, at a level fitting its class, and gives the reply.
func fail(log *slog.Logger, msg string, err error) error {
	r := reply(err)
	lvl := slog.LevelInfo
	if r.Code/100 == 4 && !errors.Is(err, errRateLimited) && !errors.Is(err, errAuthLocked) {
		lvl = slog.LevelWarn
	}
	if r == replyTemporary || errors.Is(err, errSigning) || errors.Is(err, errQueue) || errors.Is(err, errLookup) {
		lvl = slog.LevelError
	}
	log.Log(context.Background(), lvl, msg, "code", r.Code, "err", err.Error())
	return r
}
