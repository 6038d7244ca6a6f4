package httpapi

import "net/http"

// Validation collects every bad field of a request, so that one answer lists them all.
type Validation struct {
	errs []FieldError
}

// Check records message for field unless ok.
func (v *Validation) Check(ok bool, field, message string) {
	if !ok {
		v.errs = append(v.errs, FieldError{Message: message, Field: field})
	}
}

// Err returns a 400 listing every recorded problem, or nil when there is none.
func (v *Validation) Err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return &Error{Status: http.StatusBadRequest, Errors: v.errs}
}
