// Command auth is tickit's account function: sign up, sign in, sign out and the current user,
// with argon2id password hashes and an HS256 session token in the "session" cookie.
// Environment: MONGO_URL, JWT_KEY (required), JWT_TTL (24h), COOKIE_SECURE (false).
package main

import (
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
	env.Check()

	runtime.Serve(newFunction(store.New(mongoURL, database, setup), session.New(jwtKey, ttl, secure)))
}

// newFunction builds the function; main and the tests both use it.
func newFunction(db *store.DB, sessions *session.Manager) runtime.Function {
	a := &api{users: users{db: db}, sessions: sessions, dummy: dummyHash()}
	return runtime.Function{Name: "auth", Routes: a.routes, Sessions: sessions}
}
