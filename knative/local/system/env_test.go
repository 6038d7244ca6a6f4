package system

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/manifest"
	"github.com/tickit/tickit/knative/local/serving"
)

// fakeSystem is a System over the real manifests with made-up local services, enough to
// compute environments and addresses.
func fakeSystem(t *testing.T, userEnv map[string]string) *System {
	t.Helper()
	app, err := manifest.Load(filepath.Join("..", "..", "..", "knative"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &System{
		cfg: Config{Data: "/data", Getenv: func(k string) string { return userEnv[k] }},
		app: app, ln: ln, services: map[string]*serving.Service{}, images: map[string]string{},
		redis:   &backing.Redis{URL: "redis://127.0.0.1:6399/0"},
		stripe:  &backing.StripeMock{URL: "http://127.0.0.1:12111"},
		secrets: map[string]string{"JWT_KEY": "local-jwt", "STRIPE_KEY": localStripeKey},
	}
	for _, svc := range app.Services {
		if manifest.Function(svc) == "" {
			s.images[svc.Name] = svc.Spec.Template.Spec.Containers[0].Image
		} else {
			s.services[svc.Name] = &serving.Service{} // only its presence matters here
		}
	}
	return s
}

func service(t *testing.T, s *System, name string) *servingv1.Service {
	t.Helper()
	for _, svc := range s.app.Services {
		if svc.Name == name {
			return svc
		}
	}
	t.Fatalf("no service %s in the manifests", name)
	return nil
}

func envOf(t *testing.T, s *System, name string) map[string]string {
	t.Helper()
	list, err := s.functionEnv(service(t, s, name))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

func TestAFunctionGetsItsManifestEnvironmentWithLocalServices(t *testing.T) {
	s := fakeSystem(t, map[string]string{"EXPIRATION_WINDOW": "3s"})

	payments := envOf(t, s, "payments")
	want := map[string]string{
		"MONGO_URL": "file:/data/db", "JWT_KEY": "local-jwt", "STRIPE_KEY": localStripeKey,
		"STRIPE_API_BASE": "http://127.0.0.1:12111", "K_SINK": BrokerURL("tickit", "default"),
		"K_SERVICE": "payments", "K_CONFIGURATION": "payments", "K_REVISION": "payments-00001",
		"HTTP_PROXY": "http://" + s.Addr(),
	}
	for k, v := range want {
		if payments[k] != v {
			t.Errorf("payments %s=%q, want %q", k, payments[k], v)
		}
	}
	if got := envOf(t, s, "orders")["EXPIRATION_WINDOW"]; got != "3s" {
		t.Errorf("orders EXPIRATION_WINDOW=%q, want the user's 3s over the manifest's", got)
	}
	if got := envOf(t, s, "expiration")["REDIS_URL"]; got != "redis://127.0.0.1:6399/0" {
		t.Errorf("expiration REDIS_URL=%q, want the local Redis", got)
	}
	emails := envOf(t, s, "emails")
	if _, ok := emails["SENDGRID_API_KEY"]; ok {
		t.Error("emails got SENDGRID_API_KEY although the optional secret has no local value")
	}
	if _, ok := emails["K_SINK"]; ok {
		t.Error("emails got K_SINK although no SinkBinding selects it")
	}
}

func TestAMissingRequiredSecretNamesTheVariableToSet(t *testing.T) {
	s := fakeSystem(t, nil)
	delete(s.secrets, "JWT_KEY")
	_, err := s.functionEnv(service(t, s, "tickets"))
	if err == nil || !strings.Contains(err.Error(), "set JWT_KEY") {
		t.Fatalf("functionEnv = %v, want an error saying to set JWT_KEY", err)
	}
}

func TestMongoURLIsTheDataDirOrTheUsersServerWithTheFunctionsDatabase(t *testing.T) {
	cases := []struct{ user, want string }{
		{"", "file:/data/db"},
		{"mongodb://db.example:27017", "mongodb://db.example:27017/orders"},
		{"mongodb://u:p@db.example:27017/other?tls=true", "mongodb://u:p@db.example:27017/orders?tls=true"},
		{"memory:", "memory:"},
	}
	for _, c := range cases {
		s := fakeSystem(t, map[string]string{"MONGO_URL": c.user})
		if got := envOf(t, s, "orders")["MONGO_URL"]; got != c.want {
			t.Errorf("MONGO_URL=%q: orders got %q, want %q", c.user, got, c.want)
		}
	}
}

func TestDestinationsResolveToClusterAddresses(t *testing.T) {
	s := fakeSystem(t, nil)
	uri, _ := apis.ParseURL("http://127.0.0.1:9/x")
	rel, _ := apis.ParseURL("/path")
	cases := []struct {
		name string
		d    duckv1.Destination
		want string // "" for no address, "error" for an error
	}{
		{"service", duckv1.Destination{Ref: &duckv1.KReference{Kind: "Service", APIVersion: "serving.knative.dev/v1", Name: "tickets"}}, "http://tickets.tickit.svc.cluster.local"},
		{"service and path", duckv1.Destination{Ref: &duckv1.KReference{Kind: "Service", APIVersion: "serving.knative.dev/v1", Name: "tickets"}, URI: rel}, "http://tickets.tickit.svc.cluster.local/path"},
		{"broker", duckv1.Destination{Ref: &duckv1.KReference{Kind: "Broker", APIVersion: "eventing.knative.dev/v1", Name: "default"}}, BrokerURL("tickit", "default")},
		{"uri", duckv1.Destination{URI: uri}, "http://127.0.0.1:9/x"},
		{"prebuilt image", duckv1.Destination{Ref: &duckv1.KReference{Kind: "Service", APIVersion: "serving.knative.dev/v1", Name: "dead-letters"}}, ""},
		{"unknown service", duckv1.Destination{Ref: &duckv1.KReference{Kind: "Service", APIVersion: "serving.knative.dev/v1", Name: "nope"}}, "error"},
		{"unknown broker", duckv1.Destination{Ref: &duckv1.KReference{Kind: "Broker", APIVersion: "eventing.knative.dev/v1", Name: "nope"}}, "error"},
		{"other kind", duckv1.Destination{Ref: &duckv1.KReference{Kind: "Pod", APIVersion: "v1", Name: "x"}}, "error"},
	}
	for _, c := range cases {
		u, err := s.resolve(c.d)
		got := ""
		switch {
		case err != nil:
			got = "error"
		case u != nil:
			got = u.String()
		}
		if got != c.want {
			t.Errorf("%s: resolve = %q (%v), want %q", c.name, got, err, c.want)
		}
	}
}

func TestClusterNamesGoThroughTheIngressAndOthersDirectly(t *testing.T) {
	for host, want := range map[string]bool{
		BrokerHost: true, "tickets.tickit.svc.cluster.local": true, "tickets.tickit.svc": true,
		"tickets.tickit." + ExternalDomain: true, "127.0.0.1": false, "api.stripe.com": false, "localhost": false,
	} {
		if got := clusterHost(host); got != want {
			t.Errorf("clusterHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestIdleIsIDLEElseTheAutoscalingWindowElse60s(t *testing.T) {
	s := fakeSystem(t, nil)
	if got := s.idle(service(t, s, "expiration")); got != 6*time.Second {
		t.Errorf("expiration (window 6s): %v", got)
	}
	if got := s.idle(service(t, s, "tickets")); got != time.Minute {
		t.Errorf("tickets (no window): %v", got)
	}
	s.cfg.Idle = 2 * time.Second
	if got := s.idle(service(t, s, "expiration")); got != 2*time.Second {
		t.Errorf("with IDLE=2s: %v", got)
	}
}
