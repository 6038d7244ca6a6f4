// Command auth is tickit's account function: sign up, sign in, sign out and the current user,
// with argon2id password hashes and an HS256 session token in the "session" cookie.
// Environment: MONGO_URL, JWT_KEY (required), JWT_TTL (24h), COOKIE_SECURE (false),
// TRUSTED_PROXIES (loopback and private networks: see client.go).
package main

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/tickit/tickit/functions/internal/config"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

func main() {
	var env config.Env
	mongoURL := env.String("MONGO_URL", store.DefaultURL)
	jwtKey := env.Required("JWT_KEY")
	ttl := env.Duration("JWT_TTL", 24*time.Hour)
	secure := env.Bool("COOKIE_SECURE", false)
	trusted := env.String("TRUSTED_PROXIES", defaultTrustedProxies)
	env.Check()
	proxies, err := parseTrusted(trusted)
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}

	runtime.Serve(newFunction(store.New(mongoURL, database, setup), session.New(jwtKey, ttl, secure), proxies))
}

// newFunction builds the function; main and the tests both use it.
func newFunction(db *store.DB, sessions *session.Manager, trusted []netip.Prefix) runtime.Function {
	return newAPI(db, sessions, trusted, defaultLimits).function()
}

func newAPI(db *store.DB, sessions *session.Manager, trusted []netip.Prefix, l limits) *api {
	return &api{users: users{db: db}, sessions: sessions, dummy: dummyHash(),
		throttle: throttle{db: db, now: time.Now}, limits: l, trusted: trusted}
}

func (a *api) function() runtime.Function {
	return runtime.Function{Name: "auth", Routes: a.routes, Sessions: a.sessions}
}
