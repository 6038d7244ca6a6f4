// gateway.go: forwarding API requests to the function that owns them.
package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"

	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/outbound"
)

// newProxy forwards requests to target as they came (method, path, query, body, cookies,
// Authorization) and answers as the function did, Set-Cookie included. The request carries
// the target's Host: Knative routes by Host, so http://auth.tickit.svc.cluster.local reaches
// auth only if the Host says so. An unreachable function is a 502 in the API's error format.
func newProxy(name string, target *url.URL) *httputil.ReverseProxy {
	unavailable := httpapi.NewError(http.StatusBadGateway, "The "+name+" service is unavailable right now; please try again")
	return &httputil.ReverseProxy{
		Transport: outbound.Transport(), // connections kept, and the request's trace goes on to the function
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// Keep the chain the proxies before us wrote (Rewrite starts without it) and
			// append our peer: auth finds the client in it to throttle sign-ins per client.
			r.Out.Header["X-Forwarded-For"] = r.In.Header["X-Forwarded-For"]
			r.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A browser that went away cancels its request: not the function's failure.
			if !errors.Is(err, context.Canceled) {
				logging.FromContext(r.Context()).Warnw("upstream failed", "upstream", name, "error", err)
			}
			httpapi.WriteError(w, r, unavailable)
		},
	}
}
