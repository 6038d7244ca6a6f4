package manifest

import (
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/rickb777/date/period"
	corev1 "k8s.io/api/core/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/serving/pkg/apis/autoscaling"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tickit/tickit/events"
)

// The cross-checks: the manifests agree with the event catalogue, the Go workspace, the
// contracts (docs: /work/shared, the lead's contracts) and one another.

const modulePrefix = "github.com/tickit/tickit/"

func servicesByName(app *App) map[string]*servingv1.Service {
	m := map[string]*servingv1.Service{}
	for _, s := range app.Services {
		m[s.Name] = s
	}
	return m
}

// serviceRef reports whether d addresses the Knative Service named name in namespace tickit.
func serviceRef(d duckv1.Destination, name string) bool {
	r := d.Ref
	return r != nil && d.URI == nil && r.APIVersion == "serving.knative.dev/v1" && r.Kind == "Service" &&
		r.Name == name && r.Namespace == "tickit"
}

// brokerRef reports whether d addresses the Broker default. An empty namespace is the
// referrer's own (tickit): Knative resolves it so, and PingSource does not default it.
func brokerRef(d duckv1.Destination) bool {
	r := d.Ref
	return r != nil && d.URI == nil && r.APIVersion == "eventing.knative.dev/v1" && r.Kind == "Broker" &&
		r.Name == "default" && (r.Namespace == "tickit" || r.Namespace == "")
}

func TestTriggersAreExactlyTheCatalogue(t *testing.T) {
	// Arrange: (function, type) pairs from the catalogue.
	var want []string
	for _, fn := range functionNames {
		for _, typ := range events.Consumed(fn) {
			want = append(want, fn+" <- "+typ)
		}
	}
	app := loadApp(t)

	// Act: the same pairs from the Triggers.
	var got []string
	for _, tr := range app.Triggers {
		if tr.Spec.Broker != "default" || tr.Namespace != "tickit" {
			t.Errorf("trigger %s: broker %s/%s, want tickit/default", tr.Name, tr.Namespace, tr.Spec.Broker)
		}
		if tr.Spec.Filter == nil || len(tr.Spec.Filter.Attributes) != 1 || len(tr.Spec.Filters) != 0 {
			t.Errorf("trigger %s: want exactly one filter attribute (type), got %+v / %+v", tr.Name, tr.Spec.Filter, tr.Spec.Filters)
			continue
		}
		ref := tr.Spec.Subscriber.Ref
		if ref == nil {
			t.Errorf("trigger %s has no subscriber ref", tr.Name)
			continue
		}
		got = append(got, ref.Name+" <- "+tr.Spec.Filter.Attributes["type"])
	}

	// Assert
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("triggers differ from events.Catalogue:\n got %v\nwant %v", got, want)
	}
}

func TestEverySubscriberIsAFunctionService(t *testing.T) {
	// Arrange: the Services under knative/services only.
	services, err := Load(filepath.Join(root(t), "knative", "services"))
	if err != nil {
		t.Fatal(err)
	}
	byName := servicesByName(services)

	// Act + Assert
	for _, tr := range loadApp(t).Triggers {
		ref := tr.Spec.Subscriber.Ref
		if ref == nil || !serviceRef(tr.Spec.Subscriber, ref.Name) {
			t.Errorf("trigger %s: subscriber %+v is not a Knative Service in tickit", tr.Name, tr.Spec.Subscriber)
			continue
		}
		if byName[ref.Name] == nil {
			t.Errorf("trigger %s: subscriber %s is not a Service in knative/services", tr.Name, ref.Name)
		}
		// Events arrive at POST / (DESIGN 2): no path on the subscriber.
		if tr.Spec.Subscriber.URI != nil {
			t.Errorf("trigger %s: subscriber has a URI %s", tr.Name, tr.Spec.Subscriber.URI)
		}
	}
}

func TestEveryDeliverySpecIsComplete(t *testing.T) {
	app := loadApp(t)
	services := servicesByName(app)
	for _, tr := range app.Triggers {
		t.Run(tr.Name, func(t *testing.T) {
			d := tr.Spec.Delivery
			if d == nil || d.Retry == nil || d.BackoffPolicy == nil || d.BackoffDelay == nil || d.Timeout == nil || d.DeadLetterSink == nil {
				t.Fatalf("incomplete delivery spec %+v: the NATS dispatcher needs retry, backoffPolicy, backoffDelay, timeout and deadLetterSink", d)
			}
			if *d.Retry < 3 {
				t.Errorf("retry %d: a replica one version behind needs several attempts", *d.Retry)
			}
			// The dead-letter sink is a Service of the app that runs.
			if !serviceRef(*d.DeadLetterSink, "dead-letters") || services["dead-letters"] == nil {
				t.Errorf("deadLetterSink %+v is not the dead-letters Service", d.DeadLetterSink)
			}
			// An attempt must outlast the subscriber's own request timeout plus a cold start.
			timeout := duration(t, *d.Timeout)
			sub := services[tr.Spec.Subscriber.Ref.Name]
			if sub == nil {
				t.Fatalf("subscriber %s not loaded", tr.Spec.Subscriber.Ref.Name)
			}
			request := time.Duration(*sub.Spec.Template.Spec.TimeoutSeconds) * time.Second
			if timeout < request+5*time.Second {
				t.Errorf("timeout %v is not longer than %s's request timeout %v plus a cold start", timeout, sub.Name, request)
			}
			// JetStream's dispatcher gives a delivery one minute before it redelivers.
			if timeout >= time.Minute {
				t.Errorf("timeout %v is not below JetStream's one-minute ack wait", timeout)
			}
			if delay := duration(t, *d.BackoffDelay); delay <= 0 {
				t.Errorf("backoffDelay %v", delay)
			}
		})
	}
}

func duration(t *testing.T, iso string) time.Duration {
	t.Helper()
	p, err := period.Parse(iso)
	if err != nil {
		t.Fatalf("%q: %v", iso, err)
	}
	return p.DurationApprox()
}

func TestEveryKoImageIsAMainPackageOfTheWorkspace(t *testing.T) {
	dir := root(t)
	for _, s := range loadApp(t).Services {
		pkg := Function(s)
		if image := s.Spec.Template.Spec.Containers[0].Image; pkg == "" && strings.HasPrefix(image, "ko:") {
			// A cluster piece built from this repository: the dead-letter sink.
			t.Run(s.Name, func(t *testing.T) {
				pkg := strings.TrimPrefix(image, koPrefix)
				if s.Name != "dead-letters" || pkg != modulePrefix+"knative/local/cmd/dead-letters" {
					t.Fatalf("%s runs %q: only dead-letters runs a ko image outside functions/", s.Name, image)
				}
				if !isMainPackage(t, filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(pkg, modulePrefix)))) {
					t.Errorf("%s is not a main package in the workspace", pkg)
				}
			})
			continue
		}
		if pkg == "" {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			if !strings.HasPrefix(pkg, modulePrefix+"functions/") {
				t.Fatalf("image %s is not a function of this repository", pkg)
			}
			if want := modulePrefix + "functions/" + s.Name; pkg != want {
				t.Errorf("service %s runs %s, want %s", s.Name, pkg, want)
			}
			if !isMainPackage(t, filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(pkg, modulePrefix)))) {
				t.Errorf("%s is not a main package in the workspace (yet?)", pkg)
			}
		})
	}
}

// isMainPackage reports whether dir holds non-test Go files of package main.
func isMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	found := false
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			return false
		}
		if parsed.Name.Name != "main" {
			return false
		}
		found = true
	}
	return found
}

func TestIsMainPackageTellsMainFromLibrary(t *testing.T) {
	// Arrange
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Act + Assert
	if isMainPackage(t, dir) {
		t.Fatal("an empty directory is a main package")
	}
	write("main_test.go", "package main\n")
	if isMainPackage(t, dir) {
		t.Fatal("a directory with only tests is a main package")
	}
	write("lib.go", "package lib\n")
	if isMainPackage(t, dir) {
		t.Fatal("a library is a main package")
	}
	write("lib.go", "// Command x.\npackage main\n\nfunc main() {}\n")
	if !isMainPackage(t, dir) {
		t.Fatal("a main package was not recognised")
	}
}

func TestTheSinkBindingInjectsTheBrokerIntoEveryPublisher(t *testing.T) {
	// Arrange: publishers from the catalogue (the PingSource is not a Service).
	publishes := map[string]bool{}
	for _, r := range events.Catalogue {
		if r.Publisher != "pingsource" {
			publishes[r.Publisher] = true
		}
	}
	app := loadApp(t)

	for _, s := range app.Services {
		// Act
		sink := app.Sink(s)

		// Assert
		switch {
		case publishes[s.Name] && sink == nil:
			t.Errorf("%s publishes but no SinkBinding gives it K_SINK", s.Name)
		case !publishes[s.Name] && sink != nil:
			t.Errorf("%s publishes nothing but gets K_SINK", s.Name)
		case sink != nil && !brokerRef(*sink):
			t.Errorf("%s: K_SINK is %+v, want the Broker default", s.Name, sink)
		}
		delete(publishes, s.Name)
	}
	if len(publishes) != 0 {
		t.Errorf("publishers without a Service: %v", publishes)
	}
}

func TestSinkMatchesByNameOrSelector(t *testing.T) {
	// Arrange: one binding by name, one by selector, in namespace tickit.
	dir := t.TempDir()
	doc := `apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata:
  name: by-name
  namespace: tickit
spec:
  subject:
    apiVersion: serving.knative.dev/v1
    kind: Service
    name: alpha
  sink:
    uri: http://alpha.example
---
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata:
  name: by-label
  namespace: tickit
spec:
  subject:
    apiVersion: serving.knative.dev/v1
    kind: Service
    selector:
      matchLabels:
        role: publisher
  sink:
    uri: http://labelled.example
`
	if err := os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc := func(ns, name string, labels map[string]string) *servingv1.Service {
		s := &servingv1.Service{}
		s.Namespace, s.Name, s.Labels = ns, name, labels
		return s
	}
	cases := []struct {
		svc  *servingv1.Service
		want string
	}{
		{svc("tickit", "alpha", nil), "http://alpha.example"},
		{svc("tickit", "beta", map[string]string{"role": "publisher"}), "http://labelled.example"},
		{svc("tickit", "gamma", map[string]string{"role": "reader"}), ""},
		{svc("other", "alpha", map[string]string{"role": "publisher"}), ""},
	}
	for _, c := range cases {
		// Act
		sink := app.Sink(c.svc)

		// Assert
		got := ""
		if sink != nil {
			got = sink.URI.String()
		}
		if got != c.want {
			t.Errorf("%s/%s: sink %q, want %q", c.svc.Namespace, c.svc.Name, got, c.want)
		}
	}
}

func TestThePingSourceTicksExpirationThroughTheBroker(t *testing.T) {
	app := loadApp(t)
	p := app.PingSources[0]
	if p.Spec.Schedule != "* * * * *" {
		t.Errorf("schedule %q, want every minute", p.Spec.Schedule)
	}
	if !brokerRef(p.Spec.Sink) {
		t.Errorf("sink %+v, want the Broker default (the expiration-ping Trigger routes it)", p.Spec.Sink)
	}
	// Its data must be a valid tick for expiration's decoder.
	e := cloudevents.NewEvent()
	e.SetID("tick")
	e.SetSource("/apis/v1/namespaces/tickit/pingsources/" + p.Name)
	e.SetType(events.TypePing)
	if err := e.SetData(p.Spec.ContentType, []byte(p.Spec.Data)); err != nil {
		t.Fatal(err)
	}
	if err := events.Check(e); err != nil {
		t.Errorf("the tick's data %q is not a valid ping: %v", p.Spec.Data, err)
	}
}

func TestTheBrokerIsChannelBasedOnItsOwnConfig(t *testing.T) {
	b := loadApp(t).Brokers[0]
	if b.Name != "default" || b.Namespace != "tickit" {
		t.Errorf("broker %s/%s, want tickit/default", b.Namespace, b.Name)
	}
	if class := b.Annotations[eventingv1.BrokerClassAnnotationKey]; class != "MTChannelBasedBroker" {
		t.Errorf("broker class %q", class)
	}
	c := b.Spec.Config
	if c == nil || c.APIVersion != "v1" || c.Kind != "ConfigMap" || c.Namespace != "tickit" || c.Name == "" {
		t.Fatalf("broker config %+v: want a ConfigMap in tickit", c)
	}
	// What the ConfigMap holds is checked with config/ (TestTheBrokerChannelIsNatsJetStream).
}

func TestEventOnlyFunctionsAreClusterLocal(t *testing.T) {
	local := map[string]bool{"expiration": true, "emails": true, "dead-letters": true}
	for _, s := range loadApp(t).Services {
		got := s.Labels["networking.knative.dev/visibility"]
		if local[s.Name] && got != "cluster-local" {
			t.Errorf("%s is event-only but visibility is %q", s.Name, got)
		}
		if !local[s.Name] && got != "" {
			t.Errorf("%s serves the API but visibility is %q", s.Name, got)
		}
	}
}

// env is each function's environment per the contracts: name -> value ("secret:NAME/KEY"
// for a secretKeyRef, "optional-secret:..." when optional).
var env = map[string]map[string]string{
	"auth": {
		"MONGO_URL": "mongodb://mongodb.tickit.svc.cluster.local:27017/auth", "JWT_KEY": "secret:tickit-jwt/JWT_KEY",
		"JWT_TTL": "24h", "COOKIE_SECURE": "false",
	},
	"tickets": {
		"MONGO_URL": "mongodb://mongodb.tickit.svc.cluster.local:27017/tickets", "JWT_KEY": "secret:tickit-jwt/JWT_KEY",
	},
	"orders": {
		"MONGO_URL": "mongodb://mongodb.tickit.svc.cluster.local:27017/orders", "JWT_KEY": "secret:tickit-jwt/JWT_KEY",
		"EXPIRATION_WINDOW": "15m",
	},
	"payments": {
		"MONGO_URL": "mongodb://mongodb.tickit.svc.cluster.local:27017/payments", "JWT_KEY": "secret:tickit-jwt/JWT_KEY",
		"STRIPE_KEY": "secret:tickit-stripe/STRIPE_KEY", "STRIPE_API_BASE": "optional-secret:tickit-stripe/STRIPE_API_BASE",
	},
	"expiration": {"REDIS_URL": "redis://redis.tickit.svc.cluster.local:6379/0"},
	"emails": {
		"MONGO_URL":        "mongodb://mongodb.tickit.svc.cluster.local:27017/emails",
		"SENDGRID_API_KEY": "optional-secret:tickit-sendgrid/SENDGRID_API_KEY", "EMAIL_FROM": "tickets@tickit.dev",
	},
	"client": {
		"AUTH_URL": "http://auth.tickit.svc.cluster.local", "TICKETS_URL": "http://tickets.tickit.svc.cluster.local",
		"ORDERS_URL": "http://orders.tickit.svc.cluster.local", "PAYMENTS_URL": "http://payments.tickit.svc.cluster.local",
		"STRIPE_PUBLISHABLE_KEY": "optional-secret:tickit-stripe/STRIPE_PUBLISHABLE_KEY",
	},
}

func TestEveryFunctionFollowsTheContract(t *testing.T) {
	services := servicesByName(loadApp(t))
	for _, name := range functionNames {
		t.Run(name, func(t *testing.T) {
			s := services[name]
			if s == nil {
				t.Fatal("no Service")
			}
			tmpl := s.Spec.Template
			if got := tmpl.Annotations[autoscaling.MinScaleAnnotationKey]; got != "0" {
				t.Errorf("min-scale %q, want 0 (scale to zero)", got)
			}
			if tmpl.Annotations[autoscaling.MaxScaleAnnotationKey] == "" {
				t.Error("no max-scale")
			}
			if tmpl.Spec.TimeoutSeconds == nil {
				t.Error("no timeoutSeconds")
			}
			if len(tmpl.Spec.Containers) != 1 {
				t.Fatalf("%d containers", len(tmpl.Spec.Containers))
			}
			c := tmpl.Spec.Containers[0]
			if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
				t.Errorf("readiness probe %+v, want GET /healthz", p)
			}
			if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 {
				t.Errorf("ports %+v, want 8080 ($PORT)", c.Ports)
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests.Name(corev1.ResourceName(r), "").IsZero() || c.Resources.Limits.Name(corev1.ResourceName(r), "").IsZero() {
					t.Errorf("%s request or limit missing", r)
				}
			}
			got := map[string]string{}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom == nil:
					got[e.Name] = e.Value
				case e.ValueFrom.SecretKeyRef != nil:
					ref := e.ValueFrom.SecretKeyRef
					kind := "secret:"
					if ref.Optional != nil && *ref.Optional {
						kind = "optional-secret:"
					}
					got[e.Name] = kind + ref.Name + "/" + ref.Key
				default:
					got[e.Name] = "unexpected source"
				}
			}
			// Every function sends its spans to the cluster's Jaeger (config/40-jaeger.yaml).
			want := maps.Clone(env[name])
			want["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://jaeger.tickit.svc.cluster.local:4318"
			for k, v := range want {
				if got[k] != v {
					t.Errorf("env %s = %q, want %q", k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("env %s is not in the contract for %s", k, name)
				}
			}
		})
	}
	// expiration sleeps between ticks: a stable window shorter than the one-minute tick.
	if w := services["expiration"].Spec.Template.Annotations[autoscaling.WindowAnnotationKey]; w == "" {
		t.Error("expiration has no short autoscaling window")
	} else if d, err := time.ParseDuration(w); err != nil || d >= 30*time.Second {
		t.Errorf("expiration window %q, want well under the one-minute tick", w)
	}
}
