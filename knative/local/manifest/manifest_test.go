package manifest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tickit/tickit/events"
)

// root is the repository root (the directory holding go.work).
func root(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err != nil {
		t.Fatalf("repository root not found from %s: %v", dir, err)
	}
	return dir
}

// loadApp loads knative/ as the local runtime does.
func loadApp(t testing.TB) *App {
	t.Helper()
	app, err := Load(filepath.Join(root(t), "knative"))
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// functionNames are the Services that run tickit's functions.
var functionNames = []string{"auth", "tickets", "orders", "payments", "expiration", "emails", "client"}

func TestTheAppLoadsWithKnativesOwnValidation(t *testing.T) {
	// Act
	app := loadApp(t)

	// Assert: every kind is there, in the numbers the catalogue implies.
	triggers := 0
	for _, r := range events.Catalogue {
		triggers += len(r.Consumers)
	}
	if len(app.Brokers) != 1 || len(app.PingSources) != 1 || len(app.SinkBindings) != 1 {
		t.Fatalf("brokers %d, pingsources %d, sinkbindings %d: want one each",
			len(app.Brokers), len(app.PingSources), len(app.SinkBindings))
	}
	if len(app.Triggers) != triggers {
		t.Fatalf("%d triggers, want %d (one per consumer in events.Catalogue)", len(app.Triggers), triggers)
	}
	var names []string
	for _, s := range app.Services {
		names = append(names, s.Name)
	}
	want := append(slices.Clone(functionNames), "dead-letters")
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}

	// Defaults were applied, as the webhook would (the container name comes from SetDefaults).
	for _, s := range app.Services {
		if s.Spec.Template.Spec.Containers[0].Name == "" {
			t.Errorf("%s: SetDefaults did not run", s.Name)
		}
		if s.Namespace != "tickit" {
			t.Errorf("%s: namespace %q, want tickit", s.Name, s.Namespace)
		}
	}
}

func TestEveryObjectValidatesWithoutWarnings(t *testing.T) {
	// Arrange
	app := loadApp(t)
	ctx := clusterContext()
	var objects []knativeObject
	for _, o := range app.Services {
		objects = append(objects, o)
	}
	for _, o := range app.Brokers {
		objects = append(objects, o)
	}
	for _, o := range app.Triggers {
		objects = append(objects, o)
	}
	for _, o := range app.PingSources {
		objects = append(objects, o)
	}
	for _, o := range app.SinkBindings {
		objects = append(objects, o)
	}

	// Act + Assert: Load lets warnings through (as the API server does); the manifests have none.
	for _, o := range objects {
		if err := o.Validate(ctx); err != nil {
			t.Errorf("%T: %v", o, err)
		}
	}
}

func TestLoadRefusesBrokenManifests(t *testing.T) {
	const service = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: ok
  namespace: tickit
spec:
  template:
    spec:
      containers:
        - image: ko://github.com/tickit/tickit/functions/auth
`
	const ping = `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: tick
  namespace: tickit
spec:
  schedule: "%s"
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
`
	const trigger = `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: t
  namespace: tickit
spec:
  broker: default
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: orders
  delivery:
    %s
`
	cases := []struct {
		name, yaml, want string
	}{
		{"a typo in a field", strings.Replace(service, "containers:", "containrs:", 1), "unknown field"},
		{"a field at the wrong level", strings.Replace(service, "  template:", "  timeoutSeconds: 3\n  template:", 1), "unknown field"},
		{"a bad cron schedule", strings.Replace(ping, "%s", "every minute", 1), "schedule"},
		{"a bad backoff policy", strings.Replace(trigger, "%s", "backoffPolicy: fibonacci", 1), "backoffPolicy"},
		{"a timeout that is not a duration", strings.Replace(trigger, "%s", "timeout: 40s", 1), "timeout"},
		{"a negative retry", strings.Replace(trigger, "%s", "retry: -1", 1), "retry"},
		{"a Service without an image", strings.Replace(service, "        - image: ko://github.com/tickit/tickit/functions/auth\n", "        - name: x\n", 1), "image"},
		{"a min-scale that is not a number", strings.Replace(service, "  template:\n", "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: none\n", 1), "min-scale"},
		{"a request timeout above Knative's maximum", strings.Replace(service, "      containers:", "      timeoutSeconds: 3600\n      containers:", 1), "timeoutSeconds"},
		{"an unknown kind", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n", "unsupported object"},
		{"YAML that does not parse", "apiVersion: [\n", "yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Arrange: a valid first document, the broken one second, in a subdirectory.
			dir := t.TempDir()
			sub := filepath.Join(dir, "sub")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(sub, "bad.yaml")
			if err := os.WriteFile(file, []byte(service+"---\n"+c.yaml), 0o644); err != nil {
				t.Fatal(err)
			}

			// Act
			app, err := Load(dir)

			// Assert
			if err == nil {
				t.Fatalf("loaded %+v", app)
			}
			msg := err.Error()
			if !strings.Contains(msg, file) || !strings.Contains(msg, "document 1") {
				t.Errorf("error does not name the file and document: %v", err)
			}
			if !strings.Contains(strings.ToLower(msg), strings.ToLower(c.want)) {
				t.Errorf("error does not mention %q: %v", c.want, err)
			}
		})
	}
}

func TestLoadSkipsCommentsOtherFilesAndGoModules(t *testing.T) {
	// Arrange: a comment-only document, an empty one, and a file that is not YAML.
	dir := t.TempDir()
	doc := "# only a comment\n---\n---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n  namespace: tickit\n  annotations:\n    eventing.knative.dev/broker.class: MTChannelBasedBroker\n"
	if err := os.WriteFile(filepath.Join(dir, "a.yml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("kind: nonsense"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A Go module below dir (like knative/local below knative/) holds code, not manifests.
	module := filepath.Join(dir, "local")
	if err := os.MkdirAll(filepath.Join(module, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(module, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(module, "testdata", "bad.yaml"), []byte("kind: nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Act
	app, err := Load(dir)

	// Assert
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Brokers) != 1 || app.Brokers[0].Name != "default" {
		t.Fatalf("brokers %+v", app.Brokers)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("loading a missing directory succeeded")
	}
}

func BenchmarkLoad(b *testing.B) {
	dir := filepath.Join(root(b), "knative")
	objects := 0
	for b.Loop() {
		app, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		objects = len(app.Services) + len(app.Brokers) + len(app.Triggers) + len(app.PingSources) + len(app.SinkBindings)
	}
	b.ReportMetric(float64(objects), "objects/op")
	b.ReportMetric(float64(objects*b.N)/b.Elapsed().Seconds(), "objects/s")
}
