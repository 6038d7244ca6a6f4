package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The proxy sends a cluster DNS name to the process behind it with the Host header
// intact, sends NatsJetStreamChannels to the JetStream dispatcher, and refuses names it does not know.
func TestProxyRoutesClusterNames(t *testing.T) {
	hosts := make(chan string, 10)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host + r.URL.Path
	}))
	defer backend.Close()
	addr := strings.TrimPrefix(backend.URL, "http://")
	p := newDNSProxy()
	p.route("tickets", "tickit", addr)
	p.route(dispatcherName, "knative-eventing", addr)
	front := httptest.NewServer(p)
	defer front.Close()
	u, _ := url.Parse(front.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}

	for _, c := range []struct{ url, want string }{
		{"http://tickets.tickit.svc.cluster.local/api/tickets", "tickets.tickit.svc.cluster.local/api/tickets"},
		{"http://tickets.tickit.svc/x", "tickets.tickit.svc/x"},
		{"http://default-kne-trigger-kn-jsm-channel.tickit.svc.cluster.local/", "default-kne-trigger-kn-jsm-channel.tickit.svc.cluster.local/"},
	} {
		res, err := client.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := <-hosts; got != c.want {
			t.Errorf("%s reached the backend as %s, want %s", c.url, got, c.want)
		}
	}
	for _, bad := range []string{"http://orders.tickit.svc.cluster.local/", "http://default-kne-trigger-kn-channel.tickit.svc.cluster.local/", "http://example.com/"} {
		res, err := client.Get(bad)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "no local process") {
			t.Errorf("%s: %d %s, want 502 naming the missing process", bad, res.StatusCode, b)
		}
	}
}

// The receiver records binary and structured CloudEvents with their extensions, and
// refuses a structured event that is not JSON.
func TestReceiverRecordsBothModes(t *testing.T) {
	r, err := newReceiver()
	if err != nil {
		t.Fatal(err)
	}
	post := func(ct, body string, h map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := post("application/json", `{"a":1}`, map[string]string{"Ce-Id": "b1", "Ce-Knativeerrorcode": "400"}); s != http.StatusAccepted {
		t.Fatalf("binary: %d", s)
	}
	if s := post("application/cloudevents+json", `{"id":"s1","knativeerrorcode":"503","data":{"a":2}}`, nil); s != http.StatusAccepted {
		t.Fatalf("structured: %d", s)
	}
	if s := post("application/cloudevents+json", `{"id":`, nil); s != http.StatusBadRequest {
		t.Fatalf("broken structured: %d, want 400", s)
	}
	ctx := t.Context()
	b, ok := r.waitFor(ctx, time.Second, func(e event) bool { return e.attrs["id"] == "b1" })
	if !ok || b.attrs["knativeerrorcode"] != "400" || string(b.data) != `{"a":1}` {
		t.Errorf("binary event %+v (found %v)", b, ok)
	}
	s, ok := r.waitFor(ctx, time.Second, func(e event) bool { return e.attrs["id"] == "s1" })
	if !ok || s.attrs["knativeerrorcode"] != "503" || string(s.data) != `{"a":2}` {
		t.Errorf("structured event %+v (found %v)", s, ok)
	}
	if _, ok := r.waitFor(ctx, 100*time.Millisecond, func(e event) bool { return e.attrs["id"] == "none" }); ok {
		t.Error("found an event never sent")
	}
}

// Every change the run makes to the manifests finds its object; a renamed manifest
// fails here, not as a run that silently waits a minute for its PingSource.
func TestRunPatchesFindTheirManifests(t *testing.T) {
	files, err := yamlFiles(filepath.Join("..", "..", "config"), filepath.Join("..", "..", "knative"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := readObjects(files...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var orders, ping, natsConfig *unstructured.Unstructured
	for _, u := range objs {
		if patchForRun(u, "nats://127.0.0.1:4999") {
			n++
		}
		switch {
		case isKnativeService(u) && u.GetName() == "orders":
			orders = u
		case u.GetKind() == "PingSource":
			ping = u
		case u.GetKind() == "ConfigMap" && u.GetName() == "config-nats":
			natsConfig = u
		}
	}
	if n != runPatches {
		t.Fatalf("patched %d objects, want %d", n, runPatches)
	}
	if s, _, _ := unstructured.NestedString(ping.Object, "spec", "schedule"); s != tickSchedule {
		t.Errorf("PingSource schedule %q", s)
	}
	if s, _, _ := unstructured.NestedString(natsConfig.Object, "data", "eventing-nats"); !strings.Contains(s, "\nurl: nats://127.0.0.1:4999\n") &&
		!strings.HasPrefix(s, "url: nats://127.0.0.1:4999\n") || strings.Count(s, "url:") != 1 || !strings.Contains(s, "retryOnFailedConnect") {
		t.Errorf("config-nats after the patch:\n%s", s)
	}
	containers, _, _ := unstructured.NestedSlice(orders.Object, "spec", "template", "spec", "containers")
	env, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
	found := false
	for _, e := range env {
		if m := e.(map[string]any); m["name"] == "EXPIRATION_WINDOW" {
			found = m["value"] == expirationWindow
		}
	}
	if !found {
		t.Errorf("orders env %v: EXPIRATION_WINDOW not %s", env, expirationWindow)
	}
	fns, err := manifestFunctions(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"auth", "tickets", "orders", "payments", "expiration", "emails"} {
		if !strings.Contains(strings.Join(fns, " "), want) {
			t.Errorf("functions %v lack %s", fns, want)
		}
	}
}

// The channel template in config/ gives the stream limits the run checks the real stream
// against: a NatsJetStreamChannel with max age, max bytes and a discard policy.
func TestTemplateLimits(t *testing.T) {
	l, err := templateLimits(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxAge < time.Hour || l.MaxBytes < 1<<20 || (l.Discard != "New" && l.Discard != "Old") {
		t.Errorf("limits %s", l)
	}
}

// A process the run stops on purpose (a fault) does not fail the run; one that exits on
// its own does, and a restarted process appends to the same log.
func TestSupervisorStopIsNotAFailure(t *testing.T) {
	failed := make(chan error, 4)
	s := &supervisor{logs: t.TempDir(), failed: func(err error) { failed <- err }}
	defer s.stopAll()
	p, err := s.start("sleeper", "sh", []string{"-c", "echo first; exec sleep 30"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := poll(t.Context(), "the first life logged", 10*time.Second, func() error {
		if b, _ := os.ReadFile(p.log); !strings.Contains(string(b), "first") {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.stop(p, syscall.SIGKILL, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.start("sleeper", "sh", []string{"-c", "echo second; exit 3"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "sleeper exited") || !strings.Contains(err.Error(), "first") || !strings.Contains(err.Error(), "second") {
			t.Errorf("failure %v: want the unexpected exit, with both lives of the log", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an unexpected exit was not reported within 10 s")
	}
	select {
	case err := <-failed:
		t.Errorf("a second failure: %v (the stopped process must not count)", err)
	default:
	}
}

// A crash is named by its panic and the eventing-natss function it happened in, else by
// the last fatal log entry.
func TestCrashReason(t *testing.T) {
	dir := t.TempDir()
	fatal := filepath.Join(dir, "fatal.log")
	_ = os.WriteFile(fatal, []byte(`{"level":"fatal","caller":"nats/conn.go:149","msg":"Exiting, no JSM servers available"}
{"level":"error","msg":"failed to publish message"}
`), 0o644)
	if got := crashReason(fatal, errors.New("exit status 1")); got != `exit status 1: fatal "Exiting, no JSM servers available" at nats/conn.go:149` {
		t.Errorf("fatal: %s", got)
	}
	panicked := filepath.Join(dir, "panic.log")
	_ = os.WriteFile(panicked, []byte("panic: runtime error: invalid memory address or nil pointer dereference\n\ngoroutine 89 [running]:\n"+
		"knative.dev/eventing-natss/pkg/channel/jetstream/dispatcher.isPushConsumer(...)\n"), 0o644)
	if got := crashReason(panicked, errors.New("exit status 2")); got != "runtime error: invalid memory address or nil pointer dereference in pkg/channel/jetstream/dispatcher.isPushConsumer" {
		t.Errorf("panic: %s", got)
	}
}
