package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/store"
)

// The error codes of the API, one per class. They are stable: clients
// match on them, never on messages.
const (
	codeBadRequest       = "bad_request"            // 400: malformed JSON, unknown field, bad query
	codeUnauthorized     = "unauthorized"           // 401: no, unknown or expired credentials; wrong login
	codeForbidden        = "forbidden"              // 403: not allowed, or missing CSRF token
	codeNotFound         = "not_found"              // 404: no such object (or not one of yours)
	codeMethodNotAllowed = "method_not_allowed"     // 405
	codeConflict         = "conflict"               // 409: the current state forbids it
	codeExists           = "exists"                 // 409: the name is taken
	codeNotPublished     = "not_published"          // 409: key record not seen in DNS
	codeTooLarge         = "too_large"              // 413: a body larger than the limit
	codeUnsupportedMedia = "unsupported_media_type" // 415: a body that is not application/json
	codeInvalid          = "invalid"                // 422: a field breaks a rule; field names it
	codeTooManyRequests  = "too_many_requests"      // 429: login throttled
	codeInternal         = "internal"               // 500: see the server log
	codeUnavailable      = "unavailable"            // 503: this process has no mail queue or no DNS checker
)

// errorCodes lists every code, for the test that keeps the OpenAPI
// document in step.
func errorCodes() []string {
	return []string{codeBadRequest, codeUnauthorized, codeForbidden, codeNotFound, codeMethodNotAllowed,
		codeConflict, codeExists, codeNotPublished, codeTooLarge, codeUnsupportedMedia, codeInvalid, codeTooManyRequests, codeInternal, codeUnavailable}
}

// maxBodyBytes bounds a request body: the largest legitimate one (a user
// with many networks) is a few kilobytes.
const maxBodyBytes = 1 << 20

// apiError is an answer other than success, decided in this package.
type apiError struct {
	status  int
	code    string
	message string
	field   string
	// err is the cause, for the log only.
	err error
	// allow is the Allow header of a 405.
	allow string
	// retryAfter is the Retry-After of a 429.
	retryAfter time.Duration
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.message + ": " + e.err.Error()
	}
	return e.code + ": " + e.message
}

func (e *apiError) Unwrap() error { return e.err }

// errorBody is the JSON of every error answer:
// {"error":{"code":"not_found","message":"…","field":"selector"}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func (e *apiError) body(requestID string) errorBody {
	d := errorDetail{Code: e.code, Message: e.message, Field: e.field}
	if e.status >= 500 {
		d.RequestID = requestID
	}
	return errorBody{Error: d}
}

func (e *apiError) header(w http.ResponseWriter) {
	switch e.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="dkimd"`)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", e.allow)
	case http.StatusTooManyRequests:
		secs := int((e.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
}

// classify is the one mapper from errors to HTTP answers. The classes of
// store and admin carry messages written for administrators, which are
// passed on; anything else is an internal failure whose text stays in the
// log.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var fe *store.FieldError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		// RFC 9110 §15.5.14: the content is larger than the server will
		// process.
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge, err: err,
			message: fmt.Sprintf("the body is larger than %d bytes", mbe.Limit)}
	case errors.As(err, &fe):
		return &apiError{status: http.StatusUnprocessableEntity, code: codeInvalid, field: fe.Field, message: fe.Err.Error(), err: err}
	case errors.Is(err, store.ErrInvalid):
		return &apiError{status: http.StatusUnprocessableEntity, code: codeInvalid, message: message(err), err: err}
	case errors.Is(err, lifecycle.ErrNotPublished):
		return &apiError{status: http.StatusConflict, code: codeNotPublished, message: message(err), err: err}
	case errors.Is(err, store.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: codeNotFound, message: message(err), err: err}
	case errors.Is(err, store.ErrExists):
		return &apiError{status: http.StatusConflict, code: codeExists, message: message(err), err: err}
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, code: codeConflict, message: message(err, store.ErrConflict), err: err}
	case errors.Is(err, admin.ErrForbidden):
		return &apiError{status: http.StatusForbidden, code: codeForbidden, message: message(err, admin.ErrForbidden), err: err}
	case errors.Is(err, queue.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: codeNotFound, message: "no such message in the queue (it may have been delivered)", err: err}
	case errors.Is(err, queue.ErrBusy):
		return &apiError{status: http.StatusConflict, code: codeConflict, message: "the message is being delivered right now; try again in a moment", err: err}
	case errors.Is(err, admin.ErrNoQueue):
		// 503, not 404: the route exists and the request is sound, but
		// this process runs no queue (another node may); a 404 would read
		// as "this message is gone".
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message: "this dkimd process runs no mail queue; ask the node that relays mail", err: err}
	case errors.Is(err, lifecycle.ErrNoChecker):
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message: "this dkimd process has no DNS checker that reports (see the resolver setting of serve)", err: err}
	}
	return &apiError{status: http.StatusInternalServerError, code: codeInternal,
		message: "internal error; the server log has the details under this request_id", err: err}
}

// message gives an error of a known class without its package prefixes
// ("not found: domain b.example"), and without the text of drop where the
// code says it all ("conflict: ").
func message(err error, drop ...error) string {
	m := err.Error()
	for _, d := range drop {
		m = strings.TrimPrefix(m, d.Error()+": ")
	}
	for {
		rest, ok := strings.CutPrefix(m, "store: ")
		if !ok {
			rest, ok = strings.CutPrefix(m, "admin: ")
		}
		if !ok {
			return m
		}
		m = rest
	}
}

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeBadRequest, field: field, message: fmt.Sprintf(format, args...)}
}

func unauthorized(msg string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, message: msg}
}

func forbidden(msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: codeForbidden, message: msg}
}

// writeJSON sends status and v; 204 and a nil v send no body. A response
// is never cached: it may carry a token.
func writeJSON(c *call, status int, v any) {
	h := c.w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusNoContent || v == nil {
		c.w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Every answer is a plain struct; this is a programming error.
		c.log.Error("api_encode_failed", "err", err)
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(status)
	_, _ = c.w.Write(append(b, '\n')) // the client went away; nothing to do
}

// decode reads the request body as one JSON value into v. It wants
// Content-Type application/json, so that no HTML form can post to the API
// from another site (a form cannot send that type without a CORS
// preflight), at most maxBodyBytes, and no field v does not have.
func decode(c *call, v any) error {
	ct := c.r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: codeUnsupportedMedia,
			message: "send the body as Content-Type: application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.w, c.r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return badRequest("", "the body holds more than one JSON value")
	}
	return nil
}

// decodeError says what is wrong with a body in words, without quoting it.
func decodeError(err error) *apiError {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return classify(err)
	case errors.Is(err, io.EOF):
		return badRequest("", "the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the body is cut short")
	case errors.As(err, &se):
		return &apiError{status: http.StatusBadRequest, code: codeBadRequest, err: err,
			message: fmt.Sprintf("malformed JSON at byte %d", se.Offset)}
	case errors.As(err, &te):
		return &apiError{status: http.StatusBadRequest, code: codeBadRequest, field: te.Field, err: err,
			message: fmt.Sprintf("wrong type: want %s", te.Type)}
	}
	// What is left is an unknown field (DisallowUnknownFields), for which
	// encoding/json has no error type; its text names the field the client
	// sent, nothing of the server.
	return &apiError{status: http.StatusBadRequest, code: codeBadRequest, err: err,
		message: strings.TrimPrefix(err.Error(), "json: ")}
}
