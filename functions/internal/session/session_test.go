package session_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/session"
)

const key = "test-key-0123456789abcdef0123456789"

// whoAmI answers with the signed-in user's id, or 401.
func whoAmI(m *session.Manager) http.Handler {
	return m.Authenticate(httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		u, err := session.Require(r)
		if err != nil {
			return err
		}
		httpapi.WriteJSON(w, http.StatusOK, u)
		return nil
	}))
}

func call(h http.Handler, setup func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	setup(req)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestCookieAndBearerCarryTheUser(t *testing.T) {
	m := session.New(key, time.Hour, true)
	tok, err := m.Issue("65a1b2c3d4e5f60718293a4d", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}

	// The cookie the manager sets is the one the middleware reads.
	rec := httptest.NewRecorder()
	m.SetCookie(rec, tok)
	cookie := rec.Result().Cookies()[0]
	if cookie.Name != "session" || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Fatalf("cookie attributes: %+v", cookie)
	}
	byCookie := call(whoAmI(m), func(r *http.Request) { r.AddCookie(cookie) })
	byBearer := call(whoAmI(m), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })

	for name, rec := range map[string]*httptest.ResponseRecorder{"cookie": byCookie, "bearer": byBearer} {
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"id":"65a1b2c3d4e5f60718293a4d"`) ||
			!strings.Contains(rec.Body.String(), `"email":"ann@example.com"`) || !strings.Contains(rec.Body.String(), `"exp":`) {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
}

func TestBadTokensMeanAnonymous(t *testing.T) {
	m := session.New(key, time.Hour, false)
	good, _ := m.Issue("65a1b2c3d4e5f60718293a4d", "ann@example.com")
	expired, _ := session.New(key, -time.Minute, false).Issue("65a1b2c3d4e5f60718293a4d", "ann@example.com")
	otherKey, _ := session.New("another-key-entirely-0123456789ab", time.Hour, false).Issue("65a1b2c3d4e5f60718293a4d", "ann@example.com")
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"id": "x", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)

	for name, tok := range map[string]string{"expired": expired, "wrong key": otherKey, "tampered": tampered, "alg none": none, "garbage": "abc"} {
		t.Run(name, func(t *testing.T) {
			rec := call(whoAmI(m), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", rec.Code, rec.Body)
			}
			rec = call(whoAmI(m), func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session", Value: tok}) })
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("cookie: status %d, want 401", rec.Code)
			}
		})
	}
	if rec := call(whoAmI(m), func(*http.Request) {}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", rec.Code)
	}
}

func TestClearCookieExpiresIt(t *testing.T) {
	rec := httptest.NewRecorder()
	session.New(key, time.Hour, false).ClearCookie(rec)
	c := rec.Result().Cookies()[0]
	if c.Name != "session" || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("cleared cookie: %+v", c)
	}
}

func BenchmarkVerify(b *testing.B) {
	m := session.New(key, time.Hour, false)
	tok, _ := m.Issue("65a1b2c3d4e5f60718293a4d", "ann@example.com")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := m.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

func TestARememberedTokenStillExpires(t *testing.T) {
	m := session.New(key, time.Hour, false)
	now := time.Now()
	session.SetClock(m, func() time.Time { return now })
	tok, err := m.Issue("65a1b2c3d4e5f60718293a4b", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second check is answered from what the first one verified
		if u, err := m.Verify(tok); err != nil || u.ID != "65a1b2c3d4e5f60718293a4b" {
			t.Fatalf("a fresh token: %+v, %v", u, err)
		}
	}

	now = now.Add(time.Hour)

	if _, err := m.Verify(tok); err == nil {
		t.Fatal("a token at its expiry time still verifies")
	}
	if _, err := m.Verify(tok[:len(tok)-2] + "xx"); err == nil {
		t.Fatal("a tampered token verifies")
	}
}
