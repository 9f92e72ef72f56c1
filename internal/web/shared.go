package web

import (
	"net/http"
)

// What the control panel (package panel) shares with the API: the error
// codes and the one mapper from errors to HTTP answers, the session
// cookie and CSRF token, and request IDs and client addresses as the API
// logs them.

// The error codes the panel answers with, as the API does.
const (
	CodeBadRequest = codeBadRequest
	CodeForbidden  = codeForbidden
	CodeNotFound   = codeNotFound
	CodeConflict   = codeConflict
	CodeExists     = codeExists
)

// CheckTimeout bounds a DNS check run on request.
const CheckTimeout = checkTimeout

// NewError gives an error Classify maps to status and code, with message
// for the user; err is the cause, for the log only, and may be nil.
func NewError(status int, code, message string, err error) error {
	return &apiError{status: status, code: code, message: message, err: err}
}

// BadRequest gives a 400 error about the named field.
func BadRequest(field, format string, args ...any) error {
	return badRequest(field, format, args...)
}

// Class is how an error is answered: its HTTP status, its error code and
// the message for the user, and the request field at fault, if one is.
type Class struct {
	Status  int
	Code    string
	Message string
	Field   string
}

// Classify maps err to its answer, as the API answers it: the one mapper
// the API and the panel share.
func Classify(err error) Class {
	ae := classify(err)
	return Class{Status: ae.status, Code: ae.code, Message: ae.message, Field: ae.field}
}

// CSRFToken gives the CSRF token of a session.
func CSRFToken(session string) string { return csrfToken(session) }

// ValidCSRF tells whether got is the CSRF token of session.
func ValidCSRF(session, got string) bool { return validCSRF(session, got) }

// UnsafeMethod tells whether a request with method m may change
// something, and so needs a CSRF token.
func UnsafeMethod(m string) bool { return unsafeMethod(m) }

// ClearSessionCookie gives the cookie that ends a session in the browser.
func ClearSessionCookie(r *http.Request) *http.Cookie { return clearSessionCookie(r) }

// NewRequestID gives a request ID for the log and the X-Request-ID header.
func NewRequestID() string { return newRequestID() }

// RemoteIP gives the client's address, for the audit log and throttling.
func RemoteIP(r *http.Request) string { return remoteIP(r) }
