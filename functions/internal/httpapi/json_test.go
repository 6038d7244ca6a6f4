package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tickit/tickit/functions/internal/httpapi"
)

type body struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// echo decodes a body and validates it the way every function does.
var echo = httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	var b body
	if err := httpapi.Decode(w, r, &b); err != nil {
		return err
	}
	var v httpapi.Validation
	v.Check(b.Name != "", "name", "Name is required")
	v.Check(b.Count > 0, "count", "Count must be positive")
	if err := v.Err(); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, b)
	return nil
})

func TestDecodeAndValidate(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		status                  int
		fields                  []string
	}{
		{"valid", "application/json", `{"name":"a","count":1}`, 201, nil},
		{"charset is fine", "application/json; charset=utf-8", `{"name":"a","count":1}`, 201, nil},
		{"every bad field listed", "application/json", `{}`, 400, []string{"name", "count"}},
		{"wrong content type", "text/plain", `{"name":"a","count":1}`, 415, nil},
		{"no content type", "", `{"name":"a","count":1}`, 415, nil},
		{"malformed", "application/json", `{"name":`, 400, nil},
		{"empty body", "application/json", ``, 400, nil},
		{"not an object", "application/json", `[1]`, 400, nil},
		{"unknown field", "application/json", `{"name":"a","count":1,"admin":true}`, 400, []string{"admin"}},
		{"wrong type", "application/json", `{"name":"a","count":"1"}`, 400, []string{"count"}},
		{"trailing data", "application/json", `{"name":"a","count":1} {}`, 400, nil},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", httpapi.MaxBody) + `","count":1}`, 413, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			rec := httptest.NewRecorder()
			echo.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if c.status == 201 {
				return
			}
			var got struct {
				Errors []httpapi.FieldError `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Errors) == 0 {
				t.Fatalf("not the error format: %s", rec.Body)
			}
			for i, f := range c.fields {
				if i >= len(got.Errors) || got.Errors[i].Field != f {
					t.Fatalf("fields %+v, want %v", got.Errors, c.fields)
				}
			}
		})
	}
}
