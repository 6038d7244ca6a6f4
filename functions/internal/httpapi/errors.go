// Package httpapi holds the REST conventions every function shares: the error format
// {"errors":[{"message","field"?}]}, request decoding and validation, and JSON responses.
package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"knative.dev/pkg/logging"
)

// FieldError is one entry of the error list; Field names the request field when there is one.
type FieldError struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Error is an error the caller is meant to see, with its HTTP status.
type Error struct {
	Status int
	Errors []FieldError
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Message
	}
	return strings.Join(msgs, "; ")
}

// NewError returns an error with one message and no field.
func NewError(status int, message string) *Error {
	return &Error{Status: status, Errors: []FieldError{{Message: message}}}
}

// BadRequest returns a 400 error; with a field name when one is given.
func BadRequest(message string, field ...string) *Error {
	e := NewError(http.StatusBadRequest, message)
	if len(field) > 0 {
		e.Errors[0].Field = field[0]
	}
	return e
}

// Errors shared by every function.
var (
	ErrUnauthorized = NewError(http.StatusUnauthorized, "Not authorized")
	ErrForbidden    = NewError(http.StatusForbidden, "Forbidden")
	ErrNotFound     = NewError(http.StatusNotFound, "Not Found")
	errInternal     = NewError(http.StatusInternalServerError, "Something went wrong")
)

// HandlerFunc is an HTTP handler that returns its error instead of writing it, so that the
// mapping from error to status and body lives in one place (WriteError).
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

func (h HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		WriteError(w, r, err)
	}
}

// WriteError answers with the error's status and list; an unexpected error becomes a 500 with
// a generic message, the details going to the log only.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		logging.FromContext(r.Context()).Errorw("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		apiErr = errInternal
	}
	WriteJSON(w, apiErr.Status, map[string][]FieldError{"errors": apiErr.Errors})
}
