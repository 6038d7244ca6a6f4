package system

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// Addresses as in the cluster, so that K_SINK, Trigger subscribers and `make send` look the
// same here and there.
const (
	// Namespace is where the app's objects live when a reference names no namespace.
	Namespace = "tickit"
	// BrokerHost is the Broker ingress's cluster host name.
	BrokerHost = "broker-ingress.knative-eventing.svc.cluster.local"
	// ExternalDomain is the domain of external routes: <service>.<namespace>.<domain>.
	ExternalDomain = "127.0.0.1.sslip.io"
	// InternalDomain is the domain of cluster-local addresses.
	InternalDomain = "svc.cluster.local"
)

// BrokerURL is a Broker's ingress URL.
func BrokerURL(namespace, name string) string {
	return "http://" + BrokerHost + "/" + namespace + "/" + name
}

// clusterHost reports whether host (without port) is a cluster or external route name that
// the ingress serves.
func clusterHost(host string) bool {
	return strings.HasSuffix(host, "."+InternalDomain) || strings.HasSuffix(host, ".svc") || strings.HasSuffix(host, "."+ExternalDomain)
}

// clusterClient sends requests for cluster names to the ingress (as an HTTP proxy: the
// request keeps its URL and Host) and everything else directly. The functions get the same
// behaviour from HTTP_PROXY.
func (s *System) clusterClient() *http.Client {
	ingress := &url.URL{Scheme: "http", Host: s.Addr()}
	return &http.Client{Transport: &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) {
			if clusterHost(hostname(r.URL.Host)) {
				return ingress, nil
			}
			return nil, nil
		},
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// resolve turns a reference (a Service, a Broker) or a URI into the address it has here. A
// Service that runs a prebuilt image has none (nil).
func (s *System) resolve(d duckv1.Destination) (*url.URL, error) {
	if d.Ref == nil {
		if d.URI == nil {
			return nil, fmt.Errorf("a destination without ref or uri")
		}
		return d.URI.URL(), nil
	}
	ns := d.Ref.Namespace
	if ns == "" {
		ns = Namespace
	}
	var base string
	switch {
	case d.Ref.Kind == "Service" && strings.HasPrefix(d.Ref.APIVersion, "serving.knative.dev/"):
		if _, ok := s.images[d.Ref.Name]; ok {
			return nil, nil
		}
		if _, ok := s.services[d.Ref.Name]; !ok {
			return nil, fmt.Errorf("no Service %s/%s in the manifests", ns, d.Ref.Name)
		}
		base = "http://" + d.Ref.Name + "." + ns + "." + InternalDomain
	case d.Ref.Kind == "Broker" && strings.HasPrefix(d.Ref.APIVersion, "eventing.knative.dev/"):
		found := false
		for _, b := range s.app.Brokers {
			found = found || (b.Name == d.Ref.Name && b.Namespace == ns)
		}
		if !found {
			return nil, fmt.Errorf("no Broker %s/%s in the manifests", ns, d.Ref.Name)
		}
		base = BrokerURL(ns, d.Ref.Name)
	default:
		return nil, fmt.Errorf("cannot address a %s %s here", d.Ref.Kind, d.Ref.Name)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if d.URI != nil {
		u = u.ResolveReference(d.URI.URL())
	}
	return u, nil
}

// hostname is host without its port, lower-cased.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
