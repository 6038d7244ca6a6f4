package system

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWrapSeesEveryFunctionRequestByName: Config.Wrap is in front of every function the
// ingress routes to, by external, cluster and client (any other host) routes, and the
// wrapper's answer is what the caller gets.
func TestWrapSeesEveryFunctionRequestByName(t *testing.T) {
	s := fakeSystem(t, nil)
	s.local = map[string]bool{"emails": true}
	var seen []string
	s.cfg.Wrap = func(name string, _ http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = append(seen, name)
			w.WriteHeader(http.StatusTeapot)
		})
	}
	hosts := map[string]string{
		"tickets.tickit." + ExternalDomain: "tickets",
		"emails.tickit." + InternalDomain:  "emails",
		"orders.tickit.svc":                "orders",
	}
	if _, ok := s.services["client"]; ok {
		hosts["localhost"] = "client"
	}
	for host, want := range hosts {
		seen = nil
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		s.ingress().ServeHTTP(rec, req)
		if rec.Code != http.StatusTeapot || len(seen) != 1 || seen[0] != want {
			t.Errorf("GET http://%s/healthz: %d, wrapped as %v, want 418 through %s", host, rec.Code, seen, want)
		}
	}
	// A route that reaches no function is not wrapped.
	seen = nil
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Host = "emails.tickit." + ExternalDomain // cluster-local
	rec := httptest.NewRecorder()
	s.ingress().ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || len(seen) != 0 {
		t.Errorf("a cluster-local function from outside: %d, wrapped as %v, want 404 unwrapped", rec.Code, seen)
	}
}
