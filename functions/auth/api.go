// api.go: the REST routes: sign up, sign in, sign out, current user.
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/session"
)

// Errors the API answers with.
var (
	errEmailInUse = httpapi.BadRequest("Email in use", "email")
	// One message for an unknown email and a wrong password, so that sign-in does not tell
	// which addresses have accounts.
	errInvalidCredentials = httpapi.BadRequest("Invalid credentials")
	// Too many failed attempts from this client (or on this account); Retry-After says when
	// to try again. The same answer whether the account exists or not.
	errTooManyAttempts = httpapi.NewError(http.StatusTooManyRequests, "Too many attempts; please try again later")
)

type api struct {
	users    users
	sessions *session.Manager
	dummy    passwordHash // checked when the email is unknown, see dummyHash
	throttle throttle
	limits   limits
	trusted  []netip.Prefix // proxies whose X-Forwarded-For entries are believed, see clientAddr
}

func (a *api) routes(mux *http.ServeMux) {
	mux.Handle("POST /api/users/signup", httpapi.HandlerFunc(a.signUp))
	mux.Handle("POST /api/users/signin", httpapi.HandlerFunc(a.signIn))
	mux.Handle("POST /api/users/signout", httpapi.HandlerFunc(a.signOut))
	mux.Handle("GET /api/users/currentuser", httpapi.HandlerFunc(a.currentUser))
}

func (a *api) signUp(w http.ResponseWriter, r *http.Request) error {
	var c credentials
	if err := httpapi.Decode(w, r, &c); err != nil {
		return err
	}
	if err := c.validateSignUp(); err != nil {
		return err
	}
	// What is counted are the sign-ups that find the email taken, the answer an attacker
	// probes for: atomically before the hash when the email is known to be taken (so
	// concurrent probes never pass the limit), after the fact when a concurrent sign-up took
	// it meanwhile. Sign-ups of new emails are not counted (many people behind one address
	// sign up at once), but a client over the limit gets 429 for every sign-up, or a 201 would
	// tell a free email from a taken one.
	ctx := r.Context()
	client := clientAddr(r, a.trusted)
	attempt := counted{a.limits.signUp, client}
	_, taken, err := a.users.byEmail(ctx, c.Email)
	if err != nil {
		return err
	}
	if taken {
		err = a.take(w, r, attempt)
	} else {
		err = tooMany(w)(a.throttle.full(ctx, attempt))
	}
	if err != nil {
		return err
	}
	h, err := hashPassword(ctx, c.Password, currentParams) // taken or not: the same cost
	if err != nil {
		return err
	}
	if taken {
		return errEmailInUse
	}
	u, err := a.users.create(ctx, c.Email, h.String())
	if errors.Is(err, errEmailInUse) {
		a.throttle.count(context.WithoutCancel(ctx), attempt)
	}
	if err != nil {
		return err
	}
	a.known(r, c.Email, client) // the client that made the account knows it
	return a.startSession(w, u, http.StatusCreated)
}

func (a *api) signIn(w http.ResponseWriter, r *http.Request) error {
	var c credentials
	if err := httpapi.Decode(w, r, &c); err != nil {
		return err
	}
	if err := c.validateSignIn(); err != nil {
		return err
	}
	ctx := r.Context()
	// Every attempt is counted before the password is checked (so concurrent guesses cannot
	// overrun a limit) and given back when the password is right.
	client := clientAddr(r, a.trusted)
	known, err := a.throttle.known(ctx, c.Email, client)
	if err != nil {
		return err
	}
	attempts := []counted{{a.limits.pair, c.Email + "|" + client}}
	if !known { // others' failures never block a client the account knows
		attempts = append(attempts, counted{a.limits.client, client}, counted{a.limits.account, c.Email})
	}
	if err := a.take(w, r, attempts...); err != nil {
		return err
	}
	rec, found, err := a.users.byEmail(ctx, c.Email)
	if err != nil {
		return err
	}
	h := a.dummy
	if found {
		if h, err = parseHash(rec.PasswordHash); err != nil {
			return fmt.Errorf("user %s: %w", rec.ID.Hex(), err)
		}
	}
	ok, err := h.matches(ctx, c.Password)
	if err != nil {
		return err
	}
	if !found || !ok {
		return errInvalidCredentials
	}
	a.succeeded(r, c.Email, client, attempts)
	if h.params != currentParams {
		a.rehash(r, rec, c.Password)
	}
	return a.startSession(w, rec.user(), http.StatusOK)
}

// take counts attempts against the limits; a full one answers 429 with Retry-After in whole
// seconds (RFC 9110 10.2.3), rounded up.
func (a *api) take(w http.ResponseWriter, r *http.Request, attempts ...counted) error {
	return tooMany(w)(a.throttle.take(r.Context(), attempts...))
}

// tooMany returns the answer to a limit's check: 429 with Retry-After when it is full (wait > 0).
func tooMany(w http.ResponseWriter) func(wait time.Duration, err error) error {
	return func(wait time.Duration, err error) error {
		if err != nil || wait <= 0 {
			return err
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return errTooManyAttempts
	}
}

// known makes client known to the account of email; a failure to write only means the client
// is not exempt from others' failures yet.
func (a *api) known(r *http.Request, email, client string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := a.throttle.remember(ctx, email, client, a.limits.known); err != nil {
		logging.FromContext(ctx).Warnw("client not remembered", "error", err)
	}
}

// succeeded forgives a right password's attempt: the pair's failures are cleared, the other
// counts given back, and the client becomes known to the account. A failure to write only
// leaves the counts as they were.
func (a *api) succeeded(r *http.Request, email, client string, attempts []counted) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	a.throttle.giveBack(ctx, attempts[1:]...)
	if err := a.throttle.forget(ctx, attempts[0]); err != nil {
		logging.FromContext(ctx).Warnw("sign-in failures not cleared", "error", err)
	}
	a.known(r, email, client)
}

// rehash stores the password under the current parameters, now that it is known to be right.
// A failure only means the old hash stays until the next sign-in.
func (a *api) rehash(r *http.Request, rec userRecord, password string) {
	h, err := hashPassword(r.Context(), password, currentParams)
	if err == nil {
		err = a.users.replaceHash(r.Context(), rec.ID, rec.PasswordHash, h.String())
	}
	if err != nil {
		logging.FromContext(r.Context()).Warnw("password hash not upgraded", "user", rec.ID.Hex(), "error", err)
	}
}

func (a *api) signOut(w http.ResponseWriter, _ *http.Request) error {
	a.sessions.ClearCookie(w)
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

// currentUser answers who the token says the caller is (session.Authenticate has read it);
// a missing, bad or expired token is {"currentUser": null}, not an error.
func (a *api) currentUser(w http.ResponseWriter, r *http.Request) error {
	var current *session.User
	if u, ok := session.FromContext(r.Context()); ok {
		current = &u
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]*session.User{"currentUser": current})
	return nil
}

// startSession issues the user's token into the session cookie and answers with the user.
func (a *api) startSession(w http.ResponseWriter, u user, status int) error {
	token, err := a.sessions.Issue(u.ID, u.Email)
	if err != nil {
		return err
	}
	a.sessions.SetCookie(w, token)
	httpapi.WriteJSON(w, status, u)
	return nil
}
