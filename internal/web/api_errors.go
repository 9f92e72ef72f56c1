package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
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

// classify is the one mapper from errors to HTTP answers: the class gives
// the status and code, and the message is the sentence for people the
// error carries (store.Detail: its own, or its class's). Nothing here reads
// or cuts error text: what an error says for the log stays in the log, and
// an internal failure says nothing but where to look.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		// RFC 9110 §15.5.14: the content is larger than the server will
		// process.
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge, err: err,
			message: fmt.Sprintf("The body is larger than %d bytes.", mbe.Limit)}
	}
	if errors.Is(err, pkcs11.ErrToken) || errors.Is(err, pkcs11.ErrLogin) || errors.Is(err, pkcs11.ErrUnavailable) {
		// The details (module path, token, return value) are for the log.
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, err: err,
			message: "The hardware security module (PKCS#11 token) cannot be used now; the server log has the details under this request_id."}
	}
	status, code := errorClass(err)
	ae = &apiError{status: status, code: code, err: err,
		message: "Internal error; the server log has the details under this request_id."}
	if status < 500 || code == codeUnavailable {
		if m, f, ok := store.Detail(err); ok {
			ae.message, ae.field = m, f
		}
	}
	return ae
}

// errorClass gives the status and code of err's class, most specific
// first.
func errorClass(err error) (int, string) {
	switch {
	case errors.Is(err, store.ErrInvalid):
		return http.StatusUnprocessableEntity, codeInvalid
	case errors.Is(err, lifecycle.ErrNotPublished):
		return http.StatusConflict, codeNotPublished
	case errors.Is(err, store.ErrNotFound), errors.Is(err, queue.ErrNotFound):
		return http.StatusNotFound, codeNotFound
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict, codeExists
	case errors.Is(err, store.ErrConflict), errors.Is(err, queue.ErrBusy):
		return http.StatusConflict, codeConflict
	case errors.Is(err, admin.ErrForbidden):
		return http.StatusForbidden, codeForbidden
	case errors.Is(err, admin.ErrNoQueue), errors.Is(err, lifecycle.ErrNoChecker):
		// 503, not 404: the route exists and the request is sound, but
		// this process runs no queue or checker (another node may); a 404
		// would read as "this message is gone".
		return http.StatusServiceUnavailable, codeUnavailable
	}
	return http.StatusInternalServerError, codeInternal
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
			message: "Send the body as Content-Type: application/json."}
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
		return badRequest("", "The body holds more than one JSON value.")
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
		return badRequest("", "The body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "The body is cut short.")
	case errors.As(err, &se):
		return &apiError{status: http.StatusBadRequest, code: codeBadRequest, err: err,
			message: fmt.Sprintf("The body is not valid JSON (at byte %d).", se.Offset)}
	case errors.As(err, &te):
		return &apiError{status: http.StatusBadRequest, code: codeBadRequest, field: te.Field, err: err,
			message: fmt.Sprintf("A value has the wrong type: want %s.", te.Type)}
	}
	// What is left is an unknown field (DisallowUnknownFields), for which
	// encoding/json has no error type: the log has its name.
	return &apiError{status: http.StatusBadRequest, code: codeBadRequest, err: err,
		message: "The body has a field this operation does not take (the field names are in the API description)."}
}
