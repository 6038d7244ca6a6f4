package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tickit/tickit/functions/internal/httpapi"
)

// fieldsOf returns the field names an error lists, in order; nil for no error.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var apiErr *httpapi.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("want a 400 *httpapi.Error, got %#v", err)
	}
	var fields []string
	for _, fe := range apiErr.Errors {
		fields = append(fields, fe.Field)
	}
	return fields
}

func TestSignUpRules(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com" // 254 octets
	tests := []struct {
		name, email, password string
		wantEmail             string   // the normalized email, when valid
		wantFields            []string // the bad fields, in order
	}{
		{name: "valid", email: "ann@example.com", password: "12345678", wantEmail: "ann@example.com"},
		{name: "trimmed and lower-cased", email: "  Ann@Example.COM\t", password: "12345678", wantEmail: "ann@example.com"},
		{name: "254-octet email", email: long, password: "12345678", wantEmail: long},
		{name: "255-octet email", email: "a" + long, password: "12345678", wantFields: []string{"email"}},
		{name: "empty email", email: "", password: "12345678", wantFields: []string{"email"}},
		{name: "blank email", email: "   ", password: "12345678", wantFields: []string{"email"}},
		{name: "no at sign", email: "ann.example.com", password: "12345678", wantFields: []string{"email"}},
		{name: "no domain", email: "ann@", password: "12345678", wantFields: []string{"email"}},
		{name: "display name", email: "Ann <ann@example.com>", password: "12345678", wantFields: []string{"email"}},
		{name: "angle brackets", email: "<ann@example.com>", password: "12345678", wantFields: []string{"email"}},
		{name: "two addresses", email: "ann@example.com, bob@example.com", password: "12345678", wantFields: []string{"email"}},
		{name: "comment", email: "ann@example.com (Ann)", password: "12345678", wantFields: []string{"email"}},
		{name: "quoted local part", email: `"ann"@example.com`, password: "12345678", wantFields: []string{"email"}},
		{name: "inner space", email: "ann smith@example.com", password: "12345678", wantFields: []string{"email"}},
		{name: "7-character password", email: "ann@example.com", password: "1234567", wantFields: []string{"password"}},
		{name: "empty password", email: "ann@example.com", password: "", wantFields: []string{"password"}},
		{name: "8 characters of 2 bytes each", email: "ann@example.com", password: "éééééééé", wantEmail: "ann@example.com"},
		{name: "7 characters in 14 bytes", email: "ann@example.com", password: "ééééééé", wantFields: []string{"password"}},
		{name: "128 characters", email: "ann@example.com", password: strings.Repeat("é", 128), wantEmail: "ann@example.com"},
		{name: "129 characters", email: "ann@example.com", password: strings.Repeat("x", 129), wantFields: []string{"password"}},
		{name: "both bad", email: "nope", password: "short", wantFields: []string{"email", "password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := credentials{Email: tt.email, Password: tt.password}

			err := c.validateSignUp()

			if got := fieldsOf(t, err); !reflect.DeepEqual(got, tt.wantFields) {
				t.Fatalf("bad fields: want %v, got %v (%v)", tt.wantFields, got, err)
			}
			if err == nil && c.Email != tt.wantEmail {
				t.Errorf("normalized email: want %q, got %q", tt.wantEmail, c.Email)
			}
		})
	}
}

func TestSignInRules(t *testing.T) {
	tests := []struct {
		name, email, password string
		wantFields            []string
	}{
		{name: "valid", email: " Ann@Example.com ", password: "x"},
		{name: "short password is left to the hash check", email: "ann@example.com", password: "1"},
		{name: "128 characters", email: "ann@example.com", password: strings.Repeat("x", 128)},
		{name: "129 characters refused before hashing", email: "ann@example.com", password: strings.Repeat("x", 129), wantFields: []string{"password"}},
		{name: "missing password", email: "ann@example.com", wantFields: []string{"password"}},
		{name: "bad email", email: "Ann <ann@example.com>", password: "x", wantFields: []string{"email"}},
		{name: "nothing", wantFields: []string{"email", "password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := credentials{Email: tt.email, Password: tt.password}

			err := c.validateSignIn()

			if got := fieldsOf(t, err); !reflect.DeepEqual(got, tt.wantFields) {
				t.Fatalf("bad fields: want %v, got %v (%v)", tt.wantFields, got, err)
			}
			if err == nil && c.Email != "ann@example.com" {
				t.Errorf("email not normalized: %q", c.Email)
			}
		})
	}
}
