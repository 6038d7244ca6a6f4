// Package outbound is the HTTP transport of every call a function makes to another service:
// the Broker (publish), Stripe, SendGrid and, from the client's gateway, the other functions.
package outbound

import (
	"net/http"

	"github.com/tickit/tickit/functions/internal/tracing"
)

// IdleConnsPerHost is how many idle connections a transport keeps to each host: as many as a
// function's requests call it at once. Each client here calls one host (or a few), and
// http.DefaultTransport keeps 2 per host, so under load most calls dialled a new connection
// (and a TLS handshake to Stripe or SendGrid): 200 calls from 20 goroutines opened ~100
// (TestConcurrentCallsToOneHostReuseTheirConnections).
const IdleConnsPerHost = 256

// Transport returns a new transport with its own connection pool (http.DefaultTransport's
// settings, IdleConnsPerHost idle connections per host) that passes the caller's trace on
// (tracing.Transport).
func Transport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = IdleConnsPerHost, IdleConnsPerHost
	return tracing.Transport(t)
}
