package system

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/tickit/tickit/knative/local/broker"
)

// ingress routes by Host like Kourier: the Broker's cluster name reaches the Broker ingress;
// <service>.<namespace>.svc.cluster.local (or .svc) reaches any function;
// <service>.<namespace>.127.0.0.1.sslip.io reaches functions that are not cluster-local; any
// other host reaches the client function (the web UI and API gateway).
func (s *System) ingress() http.Handler {
	brokers := broker.Ingress(s.brokers...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostname(r.Host)
		switch {
		case host == BrokerHost || host == strings.TrimSuffix(BrokerHost, ".cluster.local"):
			brokers.ServeHTTP(w, r)
		case strings.HasSuffix(host, "."+InternalDomain):
			s.route(w, r, strings.TrimSuffix(host, "."+InternalDomain), false)
		case strings.HasSuffix(host, ".svc"):
			s.route(w, r, strings.TrimSuffix(host, ".svc"), false)
		case strings.HasSuffix(host, "."+ExternalDomain):
			s.route(w, r, strings.TrimSuffix(host, "."+ExternalDomain), true)
		default:
			if client, ok := s.services["client"]; ok {
				s.handler("client", client).ServeHTTP(w, r)
				return
			}
			writeError(w, http.StatusNotFound, "no function serves "+host+": the client function (web UI and API gateway) is not in knative/services; call a function by name, e.g. Host: tickets.tickit."+ExternalDomain)
		}
	})
}

// route serves "<service>.<namespace>"; external routes do not reach cluster-local services.
func (s *System) route(w http.ResponseWriter, r *http.Request, name string, external bool) {
	svc, ns, _ := strings.Cut(name, ".")
	if ns != Namespace {
		writeError(w, http.StatusNotFound, "no namespace "+ns+" here")
		return
	}
	if image, ok := s.images[svc]; ok {
		writeError(w, http.StatusServiceUnavailable, svc+" runs the prebuilt image "+image+", which the local runtime does not run")
		return
	}
	fn, ok := s.services[svc]
	if !ok || (external && s.local[svc]) {
		writeError(w, http.StatusNotFound, "no route to "+name)
		return
	}
	s.handler(svc, fn).ServeHTTP(w, r)
}

// handler is the function's handler, wrapped by Config.Wrap when there is one.
func (s *System) handler(name string, fn http.Handler) http.Handler {
	if s.cfg.Wrap == nil {
		return fn
	}
	return s.cfg.Wrap(name, fn)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string][]map[string]string{"errors": {{"message": msg}}})
}
