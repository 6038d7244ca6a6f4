package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// authEnv is the auth function served over real HTTP, with its store and session manager.
type authEnv struct {
	url      string
	db       *store.DB
	sessions *session.Manager
}

// testKey signs the tests' tokens, so that a test can mint one the function accepts.
const testKey = "auth-test-key-0123456789abcdef0123456789"

func newEnv(t *testing.T) authEnv {
	return newEnvWith(t, session.New(testKey, time.Hour, false))
}

func newEnvWith(t *testing.T, sessions *session.Manager) authEnv {
	db := testenv.Store(t, database, setup)
	srv := testenv.Serve(t, newFunction(db, sessions, testTrusted))
	return authEnv{url: srv.URL, db: db, sessions: sessions}
}

// testTrusted is TRUSTED_PROXIES' default: loopback, so a test's X-Forwarded-For names its
// client as make run's ingress would.
var testTrusted, _ = parseTrusted(defaultTrustedProxies)

func (e authEnv) post(t *testing.T, route string, body any) testenv.Response {
	t.Helper()
	return testenv.Call(t, http.MethodPost, e.url+"/api/users/"+route, body, "")
}

func (e authEnv) signUp(t *testing.T, email, password string) user {
	t.Helper()
	res := e.post(t, "signup", credentials{Email: email, Password: password})
	if res.Status != http.StatusCreated {
		t.Fatalf("sign up %s: want 201, got %d %s", email, res.Status, res.Body)
	}
	var u user
	res.JSON(t, &u)
	return u
}

// record reads an account straight from the collection.
func (e authEnv) record(t *testing.T, email string) userRecord {
	t.Helper()
	rec, found, err := users{db: e.db}.byEmail(testenv.Context(t), email)
	if err != nil || !found {
		t.Fatalf("no stored user %s (%v)", email, err)
	}
	return rec
}

// sessionCookie returns the response's session cookie, failing when there is none.
func sessionCookie(t *testing.T, res testenv.Response) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: res.Header}).Cookies() {
		if c.Name == session.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", session.CookieName, res.Header.Values("Set-Cookie"))
	return nil
}

// currentUser asks who the cookie (nil: none) and token ("": none) say the caller is.
func (e authEnv) currentUser(t *testing.T, cookie *http.Cookie, token string) *session.User {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"/api/users/currentuser", nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return currentUserOf(t, testenv.Client, req)
}

func currentUserOf(t *testing.T, client *http.Client, req *http.Request) *session.User {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("currentuser: want 200 JSON, got %d (%v)", res.StatusCode, err)
	}
	raw, ok := body["currentUser"]
	if !ok || len(body) != 1 {
		t.Fatalf(`currentuser: want exactly {"currentUser": ...}, got %v`, body)
	}
	var u *session.User
	if err := json.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// wantError checks an error answer: its status and its list of {message, field}.
func wantError(t *testing.T, res testenv.Response, status int, want ...[2]string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("want status %d, got %d %s", status, res.Status, res.Body)
	}
	var got [][2]string
	for _, e := range res.Errors(t).Errors {
		got = append(got, [2]string{e.Message, e.Field})
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("want errors %q, got %q", want, got)
	}
}

func TestSignUpCreatesTheUserAndStartsASession(t *testing.T) {
	testenv.OnEachStore(t, testSignUpCreatesTheUserAndStartsASession)
}

func testSignUpCreatesTheUserAndStartsASession(t *testing.T) {
	env := newEnv(t)

	res := env.post(t, "signup", credentials{Email: "  Ann@Example.COM ", Password: "correct horse"})

	if res.Status != http.StatusCreated {
		t.Fatalf("want 201, got %d %s", res.Status, res.Body)
	}
	var body map[string]string
	res.JSON(t, &body)
	rec := env.record(t, "ann@example.com")
	if want := map[string]string{"id": rec.ID.Hex(), "email": "ann@example.com"}; !reflect.DeepEqual(body, want) {
		t.Fatalf("want exactly %v, got %s", want, res.Body)
	}
	u, err := env.sessions.Verify(sessionCookie(t, res).Value)
	if err != nil || u.ID != body["id"] || u.Email != body["email"] {
		t.Fatalf("the cookie's token must name %v, got %+v (%v)", body, u, err)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("COOKIE_SECURE=%v", secure), func(t *testing.T) {
			env := newEnvWith(t, session.New(testKey, 2*time.Hour, secure))

			for _, res := range []testenv.Response{
				env.post(t, "signup", credentials{Email: "ann@example.com", Password: "correct horse"}),
				env.post(t, "signin", credentials{Email: "ann@example.com", Password: "correct horse"}),
			} {
				c := sessionCookie(t, res)
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != secure || c.MaxAge != 7200 {
					t.Errorf("want HttpOnly, SameSite=Lax, Path=/, Secure=%v, Max-Age=7200; got %s", secure, c.String())
				}
			}
		})
	}
}

func TestSignUpNeverStoresOrShowsThePassword(t *testing.T) {
	env := newEnv(t)

	res := env.post(t, "signup", credentials{Email: "ann@example.com", Password: "correct horse"})

	rec := env.record(t, "ann@example.com")
	if !strings.HasPrefix(rec.PasswordHash, "$argon2id$v=19$m=32768,t=2,p=1$") || strings.Contains(rec.PasswordHash, "correct horse") {
		t.Fatalf("want an argon2id hash with the current parameters, stored %q", rec.PasswordHash)
	}
	for _, leak := range []string{"correct horse", "argon2", "password", "hash", "_id"} {
		if strings.Contains(string(res.Body), leak) {
			t.Errorf("the response shows %q: %s", leak, res.Body)
		}
	}
}

func TestSignUpWithATakenEmailIsRefusedWhateverItsCase(t *testing.T) {
	testenv.OnEachStore(t, testSignUpWithATakenEmailIsRefusedWhateverItsCase)
}

func testSignUpWithATakenEmailIsRefusedWhateverItsCase(t *testing.T) {
	env := newEnv(t)
	env.signUp(t, "ann@example.com", "correct horse")

	res := env.post(t, "signup", credentials{Email: " ANN@example.com", Password: "another password"})

	wantError(t, res, http.StatusBadRequest, [2]string{"Email in use", "email"})
	if cookies := res.Header.Values("Set-Cookie"); len(cookies) != 0 {
		t.Errorf("a refused sign-up set cookies: %v", cookies)
	}
}

func TestConcurrentSignUpsForOneEmailCreateExactlyOneUser(t *testing.T) {
	testenv.OnEachStore(t, testConcurrentSignUpsForOneEmailCreateExactlyOneUser)
}

func testConcurrentSignUpsForOneEmailCreateExactlyOneUser(t *testing.T) {
	const n = 20
	l := defaultLimits
	l.signUp.max = n // every sign-up reaches the race for the email
	env := newEnvLimits(t, l, testenv.NewClock(time.Now()))
	statuses := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res := env.post(t, "signup", credentials{Email: "race@example.com", Password: fmt.Sprintf("password %d", i)})
			statuses[i], bodies[i] = res.Status, string(res.Body)
		})
	}

	close(start)
	testenv.Wait(t, &wg, 5*time.Minute, "the concurrent sign-ups")

	created := 0
	for i, status := range statuses {
		switch {
		case status == http.StatusCreated:
			created++
		case status != http.StatusBadRequest || !strings.Contains(bodies[i], `"Email in use"`):
			t.Errorf("sign-up %d: want 201 or 400 Email in use, got %d %s", i, status, bodies[i])
		}
	}
	coll, _ := env.db.Collection(testenv.Context(t), usersCollection)
	stored, err := coll.CountDocuments(testenv.Context(t), bson.M{"email": "race@example.com"})
	if created != 1 || stored != 1 || err != nil {
		t.Fatalf("want exactly one 201 and one stored user, got %d created and %d stored (%v)", created, stored, err)
	}
}

func TestTheUniqueIndexRefusesASecondAccountForAnEmail(t *testing.T) {
	testenv.OnEachStore(t, testTheUniqueIndexRefusesASecondAccountForAnEmail)
}

func testTheUniqueIndexRefusesASecondAccountForAnEmail(t *testing.T) {
	// The store alone, without the API: the index, not a look-up before the insert, decides.
	env := newEnv(t)
	u := users{db: env.db}
	ctx := testenv.Context(t)
	if _, err := u.create(ctx, "ann@example.com", "h1"); err != nil {
		t.Fatal(err)
	}

	_, err := u.create(ctx, "ann@example.com", "h2")

	if err != errEmailInUse {
		t.Fatalf("want errEmailInUse, got %v", err)
	}
}

func TestSignUpListsEveryBadField(t *testing.T) {
	env := newEnv(t)
	tests := []struct {
		name string
		body any
		want [][2]string
	}{
		{"empty object", `{}`, [][2]string{{msgEmail, "email"}, {msgPassword, "password"}}},
		{"both bad", credentials{Email: "Ann <ann@example.com>", Password: "short"}, [][2]string{{msgEmail, "email"}, {msgPassword, "password"}}},
		{"bad email", credentials{Email: "ann@", Password: "correct horse"}, [][2]string{{msgEmail, "email"}}},
		{"long password", credentials{Email: "ann@example.com", Password: strings.Repeat("p", 129)}, [][2]string{{msgPassword, "password"}}},
		{"null body", `null`, [][2]string{{msgEmail, "email"}, {msgPassword, "password"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := env.post(t, "signup", tt.body)

			wantError(t, res, http.StatusBadRequest, tt.want...)
		})
	}
}

func TestSignInStartsASessionForTheRightPassword(t *testing.T) {
	testenv.OnEachStore(t, testSignInStartsASessionForTheRightPassword)
}

func testSignInStartsASessionForTheRightPassword(t *testing.T) {
	env := newEnv(t)
	created := env.signUp(t, "ann@example.com", "correct horse")

	res := env.post(t, "signin", credentials{Email: " ANN@Example.com ", Password: "correct horse"})

	if res.Status != http.StatusOK {
		t.Fatalf("want 200, got %d %s", res.Status, res.Body)
	}
	var body map[string]string
	res.JSON(t, &body)
	if want := map[string]string{"id": created.ID, "email": "ann@example.com"}; !reflect.DeepEqual(body, want) {
		t.Fatalf("want exactly %v, got %s", want, res.Body)
	}
	u, err := env.sessions.Verify(sessionCookie(t, res).Value)
	if err != nil || u.ID != created.ID || u.Email != created.Email {
		t.Fatalf("the cookie's token must name %+v, got %+v (%v)", created, u, err)
	}
}

func TestSignInGivesOneAnswerForUnknownEmailAndWrongPassword(t *testing.T) {
	env := newEnv(t)
	env.signUp(t, "ann@example.com", "correct horse")

	wrongPassword := env.post(t, "signin", credentials{Email: "ann@example.com", Password: "correct horsE"})
	unknownEmail := env.post(t, "signin", credentials{Email: "bob@example.com", Password: "correct horse"})

	for _, res := range []testenv.Response{wrongPassword, unknownEmail} {
		wantError(t, res, http.StatusBadRequest, [2]string{"Invalid credentials", ""})
		if cookies := res.Header.Values("Set-Cookie"); len(cookies) != 0 {
			t.Errorf("a refused sign-in set cookies: %v", cookies)
		}
	}
	if string(wrongPassword.Body) != string(unknownEmail.Body) {
		t.Errorf("the answers differ:\n%s\n%s", wrongPassword.Body, unknownEmail.Body)
	}
}

func TestSignInListsEveryBadField(t *testing.T) {
	env := newEnv(t)

	res := env.post(t, "signin", `{"email":"not an address"}`)

	wantError(t, res, http.StatusBadRequest, [2]string{msgEmail, "email"}, [2]string{"Password is required", "password"})
}

func TestSignInUpgradesAHashMadeWithOlderParameters(t *testing.T) {
	testenv.OnEachStore(t, testSignInUpgradesAHashMadeWithOlderParameters)
}

func testSignInUpgradesAHashMadeWithOlderParameters(t *testing.T) {
	env := newEnv(t)
	ctx := testenv.Context(t)
	old, _ := hashPassword(ctx, "correct horse", cheapParams)
	created, err := users{db: env.db}.create(ctx, "ann@example.com", old.String())
	if err != nil {
		t.Fatal(err)
	}

	res := env.post(t, "signin", credentials{Email: "ann@example.com", Password: "correct horse"})

	if res.Status != http.StatusOK {
		t.Fatalf("an old hash must still sign in: got %d %s", res.Status, res.Body)
	}
	rec := env.record(t, created.Email)
	upgraded, err := parseHash(rec.PasswordHash)
	if err != nil || upgraded.params != currentParams {
		t.Fatalf("want the hash rewritten with %+v, stored %q (%v)", currentParams, rec.PasswordHash, err)
	}
	if res := env.post(t, "signin", credentials{Email: "ann@example.com", Password: "correct horse"}); res.Status != http.StatusOK {
		t.Fatalf("the upgraded hash must sign in: got %d %s", res.Status, res.Body)
	}
}

func TestSignInWithAnUnreadableStoredHashFailsWithoutDetails(t *testing.T) {
	env := newEnv(t)
	if _, err := (users{db: env.db}).create(testenv.Context(t), "ann@example.com", "$2a$10$bcrypt-is-not-read-here"); err != nil {
		t.Fatal(err)
	}

	res := env.post(t, "signin", credentials{Email: "ann@example.com", Password: "correct horse"})

	wantError(t, res, http.StatusInternalServerError, [2]string{"Something went wrong", ""})
}

func TestSignOutClearsTheCookie(t *testing.T) {
	env := newEnv(t)

	res := env.post(t, "signout", nil)

	if res.Status != http.StatusOK || strings.TrimSpace(string(res.Body)) != "{}" {
		t.Fatalf("want 200 {}, got %d %s", res.Status, res.Body)
	}
	c := sessionCookie(t, res)
	if c.Value != "" || c.MaxAge >= 0 || c.Path != "/" || !c.HttpOnly {
		t.Fatalf("want an empty, expired session cookie on Path=/, got %s", c.String())
	}
}

func TestCurrentUserNamesTheSignedInUser(t *testing.T) {
	env := newEnv(t)
	res := env.post(t, "signup", credentials{Email: "ann@example.com", Password: "correct horse"})
	var created user
	res.JSON(t, &created)
	cookie := sessionCookie(t, res)

	byCookie := env.currentUser(t, cookie, "")
	byBearer := env.currentUser(t, nil, cookie.Value)

	for _, u := range []*session.User{byCookie, byBearer} {
		if u == nil || u.ID != created.ID || u.Email != created.Email || u.IssuedAt == 0 || u.ExpiresAt <= u.IssuedAt {
			t.Fatalf("want %+v with iat < exp, got %+v", created, u)
		}
	}
}

func TestCurrentUserIsNullWithoutAValidToken(t *testing.T) {
	env := newEnv(t)
	res := env.post(t, "signup", credentials{Email: "ann@example.com", Password: "correct horse"})
	valid := sessionCookie(t, res)
	if env.currentUser(t, valid, "") == nil {
		t.Fatal("control: the untouched cookie must name the user")
	}
	parts := strings.Split(valid.Value, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(claims), "ann@example.com", "eve@example.com", 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	id := env.record(t, "ann@example.com").ID.Hex()
	otherKey := testenv.NewUser(t, testenv.Sessions(), "ann@example.com").Token
	expired, _ := session.New(testKey, -time.Minute, false).Issue(id, "ann@example.com")

	tests := map[string]*http.Cookie{
		"no cookie":                    nil,
		"tampered claims":              {Name: session.CookieName, Value: tampered},
		"signed with another key":      {Name: session.CookieName, Value: otherKey},
		"expired":                      {Name: session.CookieName, Value: expired},
		"garbage":                      {Name: session.CookieName, Value: "not.a.jwt"},
		"empty (a signed-out browser)": {Name: session.CookieName, Value: ""},
	}
	for name, cookie := range tests {
		t.Run(name, func(t *testing.T) {
			if u := env.currentUser(t, cookie, ""); u != nil {
				t.Fatalf("want null, got %+v", u)
			}
		})
	}
	if u := env.currentUser(t, nil, tampered); u != nil {
		t.Fatalf("tampered bearer token: want null, got %+v", u)
	}
}

func TestABrowserSignedOutIsNoLongerSignedIn(t *testing.T) {
	env := newEnv(t)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	post := func(route, body string) {
		t.Helper()
		res, err := browser.Post(env.url+"/api/users/"+route, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			t.Fatalf("%s: got %d", route, res.StatusCode)
		}
	}
	current := func() *session.User {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, env.url+"/api/users/currentuser", nil)
		return currentUserOf(t, browser, req)
	}
	post("signup", `{"email":"ann@example.com","password":"correct horse"}`)
	if u := current(); u == nil || u.Email != "ann@example.com" {
		t.Fatalf("signed up: want ann as the current user, got %+v", u)
	}

	post("signout", "")

	if u := current(); u != nil {
		t.Fatalf("signed out: want null, got %+v", u)
	}
}

func TestBadRequestBodiesGetAClearAnswer(t *testing.T) {
	env := newEnv(t)
	huge := `{"email":"ann@example.com","password":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name, contentType, body string
		status                  int
		want                    [2]string
	}{
		{"malformed JSON", "application/json", `{"email":`, 400, [2]string{"Malformed JSON: unexpected EOF", ""}},
		{"empty body", "application/json", ``, 400, [2]string{"Request body must be a JSON object", ""}},
		{"an array, not an object", "application/json", `[{"email":"ann@example.com"}]`, 400, [2]string{"Request body must be a JSON object", ""}},
		{"data after the object", "application/json", `{} {}`, 400, [2]string{"Malformed JSON: data after the JSON object", ""}},
		{"wrong content type", "text/plain", `{}`, 415, [2]string{"Content-Type must be application/json", ""}},
		{"no content type", "", `{}`, 415, [2]string{"Content-Type must be application/json", ""}},
		{"unknown field", "application/json", `{"email":"ann@example.com","password":"correct horse","admin":true}`, 400, [2]string{"Unknown field admin", "admin"}},
		{"email not a string", "application/json", `{"email":5,"password":"correct horse"}`, 400, [2]string{"email must be a string", "email"}},
		{"body over 1 MiB", "application/json", huge, 413, [2]string{"Request body must be at most 1048576 bytes", ""}},
	}
	for _, route := range []string{"signup", "signin"} {
		for _, tt := range tests {
			t.Run(route+"/"+tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, env.url+"/api/users/"+route, strings.NewReader(tt.body))
				if tt.contentType != "" {
					req.Header.Set("Content-Type", tt.contentType)
				}

				res := do(t, req)

				wantError(t, res, tt.status, tt.want)
			})
		}
	}
}

func TestUnknownRoutesAndMethodsAnswerInTheErrorFormat(t *testing.T) {
	env := newEnv(t)

	wantError(t, testenv.Call(t, http.MethodGet, env.url+"/api/users/nobody", nil, ""), 404, [2]string{"Not Found", ""})
	wantError(t, testenv.Call(t, http.MethodGet, env.url+"/api/users/signup", nil, ""), 405, [2]string{"Method Not Allowed", ""})
}

// do sends req and reads the answer in full.
func do(t *testing.T, req *http.Request) testenv.Response {
	t.Helper()
	res, err := testenv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return testenv.Response{Status: res.StatusCode, Header: res.Header, Body: body}
}

func TestSignInForAnUnknownEmailRunsAHashLikeAWrongPassword(t *testing.T) {
	// With every hashing slot taken, a sign-in that hashes cannot answer; one that skipped the
	// hash for an unknown email would answer at once. No timing is asserted: a hashing request
	// never answers while the slots are held, whatever the machine's speed.
	env := newEnv(t)
	env.signUp(t, "ann@example.com", "correct horse")
	for range cap(argonSlots) {
		argonSlots <- struct{}{}
	}
	released := false
	release := func() {
		if !released {
			for range cap(argonSlots) {
				<-argonSlots
			}
			released = true
		}
	}
	defer release()

	for _, body := range []string{
		`{"email":"ann@example.com","password":"wrong horse"}`,
		`{"email":"bob@example.com","password":"correct horse"}`,
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.url+"/api/users/signin", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := testenv.Client.Do(req)
		cancel()
		if err == nil {
			res.Body.Close()
			t.Fatalf("%s: answered %d without a free hashing slot, so it ran no hash", body, res.StatusCode)
		}
	}
	release()
	wantError(t, env.post(t, "signin", credentials{Email: "bob@example.com", Password: "correct horse"}),
		http.StatusBadRequest, [2]string{"Invalid credentials", ""})
}
