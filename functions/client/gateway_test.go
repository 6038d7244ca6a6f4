package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tickit/tickit/functions/internal/testenv"
)

// seen is what an upstream function received.
type seen struct {
	Upstream, Method, Path, Query, Body, ContentType, Cookie, Authorization, Host, ForwardedHost string
	ForwardedFor                                                                                 string
}

// fakeFunction stands in for auth, tickets, orders or payments: it answers every request
// with what it received, as JSON, and sets a cookie the way auth does on sign-in.
func fakeFunction(t *testing.T, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "from-" + name, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(seen{
			Upstream: name, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body),
			ContentType: r.Header.Get("Content-Type"), Cookie: r.Header.Get("Cookie"),
			Authorization: r.Header.Get("Authorization"), Host: r.Host, ForwardedHost: r.Header.Get("X-Forwarded-Host"),
			ForwardedFor: r.Header.Get("X-Forwarded-For"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// builtApp is a UI as `make ui` leaves it.
func builtApp() fstest.MapFS {
	return fstest.MapFS{
		"not-built.html":              {Data: []byte("<p>run make ui</p>")},
		"dist/index.html":             {Data: []byte(`<!doctype html><div id="root"></div><script src="/assets/index-AbC123.js"></script>`)},
		"dist/assets/index-AbC123.js": {Data: []byte(`console.log("tickit")`)},
		"dist/assets/index-Zz9.css":   {Data: []byte(`body{margin:0}`)},
		"dist/assets/vendor-Big1.js":  {Data: []byte(bigScript)},
		"dist/favicon.svg":            {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	}
}

// bigScript is an asset large and repetitive enough to be worth compressing.
var bigScript = strings.Repeat(`export function formatMoney(price) { return dollars.format(price); }`+"\n", 400)

// gateway is the client function in front of four fake functions.
type gateway struct {
	URL       string
	upstreams map[string]*httptest.Server
}

func newGateway(t *testing.T, ui fstest.MapFS, key string) gateway {
	t.Helper()
	up := map[string]*httptest.Server{}
	for _, name := range []string{"auth", "tickets", "orders", "payments"} {
		up[name] = fakeFunction(t, name)
	}
	fn, err := NewFunction(Config{
		AuthURL: up["auth"].URL, TicketsURL: up["tickets"].URL, OrdersURL: up["orders"].URL, PaymentsURL: up["payments"].URL,
		StripePublishableKey: key, UI: ui,
	})
	if err != nil {
		t.Fatal(err)
	}
	return gateway{URL: testenv.Serve(t, fn).URL, upstreams: up}
}

// do sends a request with optional headers and returns the answer.
func do(t *testing.T, method, url, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed, no cookie jar
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func decodeSeen(t *testing.T, body string) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("not what a fake function answers: %s", body)
	}
	return s
}

func TestAPIRequestsReachTheFunctionThatOwnsThem(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	cases := []struct {
		method, path, query, body, upstream string
	}{
		{"POST", "/api/users/signup", "", `{"email":"a@b.co","password":"secret123"}`, "auth"},
		{"GET", "/api/users/currentuser", "", "", "auth"},
		{"GET", "/api/users", "", "", "auth"},
		{"POST", "/api/tickets", "", `{"title":"Concert","price":19.99}`, "tickets"},
		{"GET", "/api/tickets", "limit=3&after=65a1b2c3d4e5f60718293a4c", "", "tickets"},
		{"PUT", "/api/tickets/65a1b2c3d4e5f60718293a4c", "", `{"title":"Opera","price":5}`, "tickets"},
		{"POST", "/api/orders", "", `{"ticketId":"65a1b2c3d4e5f60718293a4c"}`, "orders"},
		{"GET", "/api/orders", "", "", "orders"},
		{"DELETE", "/api/orders/65a1b2c3d4e5f60718293a4c", "", "", "orders"},
		{"POST", "/api/payments", "", `{"orderId":"65a1b2c3d4e5f60718293a4c","token":"pm_card_visa"}`, "payments"},
		{"GET", "/api/payments/", "", "", "payments"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			// Arrange
			url := g.URL + c.path
			if c.query != "" {
				url += "?" + c.query
			}
			header := map[string]string{}
			if c.body != "" {
				header["Content-Type"] = "application/json"
			}

			// Act
			resp, body := do(t, c.method, url, c.body, header)

			// Assert: the function's own status and body come back, and it saw the request as sent.
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want the upstream's 201: %s", resp.StatusCode, body)
			}
			got := decodeSeen(t, body)
			want := seen{Upstream: c.upstream, Method: c.method, Path: c.path, Query: c.query, Body: c.body,
				ContentType: header["Content-Type"], Host: strings.TrimPrefix(g.upstreams[c.upstream].URL, "http://"),
				ForwardedHost: strings.TrimPrefix(g.URL, "http://"), ForwardedFor: "127.0.0.1"}
			if got != want {
				t.Fatalf("upstream saw\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}

func TestCookiesAndTokensPassBothWays(t *testing.T) {
	g := newGateway(t, builtApp(), "")

	// Act: the browser sends its session cookie (and curl a bearer token).
	resp, body := do(t, "POST", g.URL+"/api/users/signin", `{}`, map[string]string{
		"Content-Type": "application/json", "Cookie": "session=jwt-from-browser", "Authorization": "Bearer jwt-from-curl",
	})

	// Assert: the function got both, and its Set-Cookie reaches the browser unchanged.
	got := decodeSeen(t, body)
	if got.Cookie != "session=jwt-from-browser" || got.Authorization != "Bearer jwt-from-curl" {
		t.Fatalf("auth saw Cookie %q, Authorization %q", got.Cookie, got.Authorization)
	}
	if set := resp.Header.Values("Set-Cookie"); len(set) != 1 || set[0] != "session=from-auth; Path=/; HttpOnly; SameSite=Lax" {
		t.Fatalf("Set-Cookie %q, want the one auth set", set)
	}
}

func TestTheForwardedForChainReachesTheFunctionWithTheGatewaysHopAppended(t *testing.T) {
	// Arrange: the request came through Kourier and the activator before the gateway.
	g := newGateway(t, builtApp(), "")

	// Act
	_, body := do(t, "POST", g.URL+"/api/users/signin", `{}`, map[string]string{
		"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.7, 10.244.0.12",
	})

	// Assert: auth can still find the client (issue 17: sign-in throttling counts per client).
	if got := decodeSeen(t, body).ForwardedFor; got != "203.0.113.7, 10.244.0.12, 127.0.0.1" {
		t.Fatalf("auth saw X-Forwarded-For %q, want the chain with the gateway's peer appended", got)
	}
}

func TestAFunctionsErrorsReachTheBrowserAsTheyAre(t *testing.T) {
	// Arrange: tickets refuses with a field error.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"errors":[{"message":"Title is required","field":"title"}]}`)
	}))
	t.Cleanup(refusing.Close)
	fn, err := NewFunction(Config{AuthURL: refusing.URL, TicketsURL: refusing.URL, OrdersURL: refusing.URL, PaymentsURL: refusing.URL, UI: builtApp()})
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.Serve(t, fn)

	// Act
	resp := testenv.Call(t, "POST", srv.URL+"/api/tickets", map[string]any{"title": ""}, "")

	// Assert
	if resp.Status != http.StatusBadRequest || resp.Errors(t).Errors[0].Field != "title" {
		t.Fatalf("status %d body %s, want tickets' 400 with its field", resp.Status, resp.Body)
	}
}

func TestAnUnreachableFunctionIsA502InTheErrorFormat(t *testing.T) {
	// Arrange: orders is down (its address refuses connections).
	g := newGateway(t, builtApp(), "")
	g.upstreams["orders"].Close()

	// Act
	resp := testenv.Call(t, "GET", g.URL+"/api/orders", nil, "")

	// Assert: 502, the API's error body, naming the service; the others still answer.
	if resp.Status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502: %s", resp.Status, resp.Body)
	}
	if msg := resp.Errors(t).Errors[0].Message; !strings.Contains(msg, "orders service is unavailable") {
		t.Fatalf("message %q does not say orders is unavailable", msg)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if other := testenv.Call(t, "GET", g.URL+"/api/tickets", nil, ""); other.Status != http.StatusCreated {
		t.Fatalf("tickets answered %d while only orders is down", other.Status)
	}
}

func TestUnknownAPIPathsAreTheAPIs404(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api"},
		{"GET", "/api/"},
		{"GET", "/api/nothing"},
		{"POST", "/api/nothing/here"},
		{"GET", "/api/userszzz"},
		{"DELETE", "/api/ticket"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp := testenv.Call(t, c.method, g.URL+c.path, nil, "")
			if resp.Status != http.StatusNotFound || resp.Errors(t).Errors[0].Message != "Not Found" {
				t.Fatalf("status %d body %s, want the API's 404", resp.Status, resp.Body)
			}
		})
	}
}

func TestConfigJSONTellsTheUIWhetherStripeJSIsUsed(t *testing.T) {
	for _, key := range []string{"", "pk_test_123"} {
		t.Run(fmt.Sprintf("key %q", key), func(t *testing.T) {
			g := newGateway(t, builtApp(), key)
			resp := testenv.Call(t, "GET", g.URL+"/config.json", nil, "")
			var got clientSettings
			resp.JSON(t, &got)
			if resp.Status != http.StatusOK || got.StripePublishableKey != key {
				t.Fatalf("status %d settings %+v, want key %q", resp.Status, got, key)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Fatalf("Cache-Control %q: a changed key must reach browsers", cc)
			}
		})
	}
}

func TestUpstreamURLsMustBeHTTP(t *testing.T) {
	for _, bad := range []string{"auth.tickit.svc.cluster.local", "ftp://auth", "http://", "::nonsense"} {
		_, err := NewFunction(Config{AuthURL: bad, TicketsURL: "http://t", OrdersURL: "http://o", PaymentsURL: "http://p", UI: builtApp()})
		if err == nil || !strings.Contains(err.Error(), "AUTH_URL") {
			t.Errorf("AUTH_URL=%q: error %v, want one naming AUTH_URL", bad, err)
		}
	}
}

func TestConcurrentRequestsGetTheirOwnAnswers(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	paths := map[string]string{"auth": "/api/users/currentuser", "tickets": "/api/tickets", "orders": "/api/orders", "payments": "/api/payments"}
	names := []string{"auth", "tickets", "orders", "payments"}
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := names[i%len(names)]
			query := fmt.Sprintf("n=%d", i)
			resp, err := testenv.Client.Get(g.URL + paths[name] + "?" + query)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			var s seen
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.Upstream != name || s.Query != query {
				errs <- fmt.Sprintf("request %d to %s got %+v (%v)", i, name, s, err)
			}
		}()
	}
	testenv.Wait(t, &wg, 5*time.Minute, "the concurrent requests")
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
