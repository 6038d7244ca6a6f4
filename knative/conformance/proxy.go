package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
)

// dnsProxy is the forward proxy every process gets as HTTP_PROXY: it sends a request for
// a cluster DNS name (<service>.<namespace>.svc.cluster.local) to the local process
// behind that Service, keeping the Host header (the channel dispatcher and the Broker
// route on it). Knative's HTTP clients and the functions' publisher honour HTTP_PROXY.
type dnsProxy struct {
	mu     sync.RWMutex
	routes map[string]string // "<service>.<namespace>" -> "127.0.0.1:port"
	rp     *httputil.ReverseProxy
}

func newDNSProxy() *dnsProxy {
	p := &dnsProxy{routes: map[string]string{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = r.In.Context().Value(backendKey{}).(string)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 100},
		// The caller gets the failure as a 502 and reports it itself; the default handler
		// would also log every refused connection while the processes stop.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	return p
}

type backendKey struct{}

func (p *dnsProxy) route(service, namespace, addr string) {
	p.mu.Lock()
	p.routes[service+"."+namespace] = addr
	p.mu.Unlock()
}

// backend resolves a host name; a NatsJetStreamChannel's Service
// (<channel>-kn-jsm-channel.<ns>) is an ExternalName of the JetStream dispatcher's.
func (p *dnsProxy) backend(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	name, ok := strings.CutSuffix(host, ".svc.cluster.local")
	if !ok {
		name, ok = strings.CutSuffix(host, ".svc")
	}
	if !ok {
		return "", false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if addr, ok := p.routes[name]; ok {
		return addr, true
	}
	svc, _, _ := strings.Cut(name, ".")
	if strings.HasSuffix(svc, "-kn-jsm-channel") {
		addr, ok := p.routes[dispatcherName+".knative-eventing"]
		return addr, ok
	}
	return "", false
}

func (p *dnsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr, ok := p.backend(r.URL.Host)
	if !ok {
		http.Error(w, fmt.Sprintf("conformance proxy: no local process for %q", r.URL.Host), http.StatusBadGateway)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, addr)))
}
