// user.go: the account as the API shows it, and the rules for emails and passwords (no I/O).
package main

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/tickit/tickit/functions/internal/httpapi"
)

// user is what the API shows of an account: never the password hash.
type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// credentials is the body of sign-up and sign-in.
type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

const (
	maxEmailLen    = 254 // octets: the longest address SMTP carries (RFC 5321)
	minPasswordLen = 8   // characters, not bytes
	maxPasswordLen = 128
)

const (
	msgEmail    = "Email must be a valid address"
	msgPassword = "Password must be between 8 and 128 characters"
)

// normalizeEmail is the form emails are stored and compared in: trimmed and lower-cased, so
// that Ann@Example.com and ann@example.com are one account.
func normalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// validEmail accepts a bare address (no display name, no list, no comments) that
// net/mail reads back unchanged.
func validEmail(s string) bool {
	if s == "" || len(s) > maxEmailLen {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// validateSignUp normalizes the email and checks both fields, listing every bad one.
func (c *credentials) validateSignUp() error {
	c.Email = normalizeEmail(c.Email)
	n := utf8.RuneCountInString(c.Password)
	var v httpapi.Validation
	v.Check(validEmail(c.Email), "email", msgEmail)
	v.Check(n >= minPasswordLen && n <= maxPasswordLen, "password", msgPassword)
	return v.Err()
}

// validateSignIn normalizes the email and checks the fields' form only: a password must be
// there and no longer than any sign-up accepts (so that no huge input reaches the hash).
func (c *credentials) validateSignIn() error {
	c.Email = normalizeEmail(c.Email)
	var v httpapi.Validation
	v.Check(validEmail(c.Email), "email", msgEmail)
	v.Check(c.Password != "", "password", "Password is required")
	v.Check(utf8.RuneCountInString(c.Password) <= maxPasswordLen, "password", "Password must be at most 128 characters")
	return v.Err()
}
