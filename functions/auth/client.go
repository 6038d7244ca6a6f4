// client.go: which address a request comes from, behind Knative's proxies.
package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// defaultTrustedProxies are the networks whose hops are ours: loopback (queue-proxy in the pod,
// make run's ingress) and the private ranges cluster pods and Services live in (Kourier's Envoy,
// the activator, the client function's gateway). Set TRUSTED_PROXIES to the cluster's pod and
// Service CIDRs to trust exactly those.
const defaultTrustedProxies = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"

// parseTrusted reads a comma-separated list of CIDRs (TRUSTED_PROXIES).
func parseTrusted(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES=%q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clientAddr is the address of the client that sent r, as the key its attempts are counted
// under. Every proxy on the way (Kourier's Envoy, the activator, queue-proxy, the client
// gateway, make run's ingress) appends the address it got the request from to
// X-Forwarded-For, so the entries on the right were written by our proxies and only those on
// the left can be written by the client. Starting from the connection's peer and walking the
// list from the right while the address is a trusted proxy's, the first untrusted address is
// the one that connected to our first proxy: the client (or its NAT), whatever the client put
// in the header. An IPv6 client is counted by its /64, which one host commonly owns whole.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	addr, ok := parseHop(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0 && isTrusted(addr, trusted); i-- {
		prev, ok := parseHop(hops[i])
		if !ok {
			break // not written by a proxy of ours: the trusted hop is as far as we know
		}
		addr = prev
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// parseHop reads one address: "1.2.3.4", "1.2.3.4:5678", "2001:db8::1", "[2001:db8::1]:80".
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
