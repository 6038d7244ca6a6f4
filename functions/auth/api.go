// api.go: the REST routes: sign up, sign in, sign out, current user.
package main

import (
	"fmt"
	"net/http"

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
)

type api struct {
	users    users
	sessions *session.Manager
	dummy    passwordHash // checked when the email is unknown, see dummyHash
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
	h, err := hashPassword(r.Context(), c.Password, currentParams)
	if err != nil {
		return err
	}
	u, err := a.users.create(r.Context(), c.Email, h.String())
	if err != nil {
		return err
	}
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
	if h.params != currentParams {
		a.rehash(r, rec, c.Password)
	}
	return a.startSession(w, rec.user(), http.StatusOK)
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
