// Package session issues and reads the signed-in user's token: an HS256 JWT carried in the
// HttpOnly "session" cookie or an "Authorization: Bearer" header. A bad token means anonymous.
package session

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickit/tickit/functions/internal/httpapi"
)

// CookieName is the name of the session cookie.
const CookieName = "session"

// User is who a valid token says the caller is.
type User struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
}

type claims struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	jwt.RegisteredClaims
}

// Manager signs and verifies tokens with one key.
type Manager struct {
	key    []byte
	ttl    time.Duration
	secure bool
	parser *jwt.Parser
	now    func() time.Time

	// verified remembers the tokens that passed Verify (the same token comes with each of a
	// user's requests): checking one again is its expiry only, instead of an HMAC, two base64
	// decodings and a JSON parse (about a tenth of a request's CPU). Only valid tokens get in,
	// and at most verifiedMax of them: then it starts afresh.
	mu       sync.Mutex
	verified map[string]User
}

// verifiedMax bounds Manager.verified: about 1 MB of tokens.
const verifiedMax = 4096

// New returns a Manager; secureCookie sets the cookie's Secure attribute (COOKIE_SECURE).
func New(key string, ttl time.Duration, secureCookie bool) *Manager {
	m := &Manager{key: []byte(key), ttl: ttl, secure: secureCookie, now: time.Now, verified: map[string]User{}}
	m.parser = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return m.now() }))
	return m
}

// Issue returns a signed token for the user, valid for the manager's TTL.
func (m *Manager) Issue(id, email string) (string, error) {
	now := m.now()
	c := claims{ID: id, Email: email, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(m.ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(m.key)
}

// Verify returns the user a token names, or an error when it is malformed, tampered with,
// signed with another key or expired.
func (m *Manager) Verify(token string) (User, error) {
	m.mu.Lock()
	u, ok := m.verified[token]
	m.mu.Unlock()
	if ok && m.now().Before(time.Unix(u.ExpiresAt, 0)) {
		return u, nil
	}
	var c claims
	if _, err := m.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return m.key, nil }); err != nil {
		if ok {
			m.mu.Lock()
			delete(m.verified, token)
			m.mu.Unlock()
		}
		return User{}, err
	}
	if c.ID == "" || c.IssuedAt == nil {
		return User{}, errors.New("session: token without id or iat")
	}
	u = User{ID: c.ID, Email: c.Email, IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix()}
	m.mu.Lock()
	if len(m.verified) >= verifiedMax {
		clear(m.verified)
	}
	m.verified[token] = u
	m.mu.Unlock()
	return u, nil
}

// SetCookie puts the token into the session cookie.
func (m *Manager) SetCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, m.cookie(token, int(m.ttl.Seconds())))
}

// ClearCookie expires the session cookie.
func (m *Manager) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, m.cookie("", -1))
}

func (m *Manager) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: m.secure}
}

type ctxKey struct{}

// Authenticate reads the token of every request (Bearer header first, then the cookie) and
// puts the user into the request context; requests without a valid token go on anonymous.
func (m *Manager) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, err := m.Verify(token(r)); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, u))
		}
		next.ServeHTTP(w, r)
	})
}

func token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// FromContext returns the signed-in user, if any.
func FromContext(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(ctxKey{}).(User)
	return u, ok
}

// Require returns the signed-in user or httpapi.ErrUnauthorized.
func Require(r *http.Request) (User, error) {
	u, ok := FromContext(r.Context())
	if !ok {
		return User{}, httpapi.ErrUnauthorized
	}
	return u, nil
}
