// function.go: the client function, built the same way by main and by the tests.
package main

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/url"

	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/runtime"
)

// Config is what the client function needs.
type Config struct {
	// Base URLs of the functions behind the API (cluster-local URLs in the cluster).
	AuthURL, TicketsURL, OrdersURL, PaymentsURL string
	// StripePublishableKey, when set, makes the pay form collect the card with Stripe.js;
	// without it the form offers Stripe's test payment methods.
	StripePublishableKey string
	// UI holds the built app (index.html and assets/) and not-built.html.
	UI fs.FS
}

// upstream is one function the gateway forwards to.
type upstream struct {
	name, env, base string
	prefix          string // the API path it owns, with and without a trailing segment
}

// NewFunction returns the client function: the API gateway under /api/, the UI everywhere else.
func NewFunction(cfg Config) (runtime.Function, error) {
	upstreams := []upstream{
		{"auth", "AUTH_URL", cfg.AuthURL, "/api/users"},
		{"tickets", "TICKETS_URL", cfg.TicketsURL, "/api/tickets"},
		{"orders", "ORDERS_URL", cfg.OrdersURL, "/api/orders"},
		{"payments", "PAYMENTS_URL", cfg.PaymentsURL, "/api/payments"},
	}
	proxies := make([]http.Handler, len(upstreams))
	for i, u := range upstreams {
		target, err := url.Parse(u.base)
		if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
			return runtime.Function{}, fmt.Errorf("config: %s=%q is not an http(s) URL such as http://%s.tickit.svc.cluster.local", u.env, u.base, u.name)
		}
		proxies[i] = newProxy(u.name, target)
	}
	site, err := newUI(cfg.UI)
	if err != nil {
		return runtime.Function{}, err
	}
	settings := clientSettings{StripePublishableKey: cfg.StripePublishableKey}

	return runtime.Function{
		Name: "client",
		Routes: func(mux *http.ServeMux) {
			for i, u := range upstreams {
				mux.Handle(u.prefix, proxies[i])
				mux.Handle(u.prefix+"/", proxies[i])
			}
			// Any other API path is unknown: the API's 404, never the app's HTML.
			mux.Handle("/api/", httpapi.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				return httpapi.ErrNotFound
			}))
			mux.Handle("GET /config.json", settings)
			mux.Handle("/", site)
		},
	}, nil
}

// clientSettings is what the UI reads at start from GET /config.json.
type clientSettings struct {
	StripePublishableKey string `json:"stripePublishableKey"`
}

func (s clientSettings) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	httpapi.WriteJSON(w, http.StatusOK, s)
}
