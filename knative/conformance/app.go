package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// objectRef is an applied object the run waits on.
type objectRef struct {
	obj *unstructured.Unstructured
}

// patchForRun changes what cannot run here, or would make the run slow, and says so.
// natsURL is the run's nats-server (NATS is not HTTP, so the proxy cannot carry the
// cluster name). It returns false for objects it leaves alone.
func patchForRun(u *unstructured.Unstructured, natsURL string) bool {
	switch {
	case u.GetKind() == "ConfigMap" && u.GetName() == "config-nats":
		conf, _, _ := unstructured.NestedString(u.Object, "data", "eventing-nats")
		var out []string
		for _, line := range strings.Split(conf, "\n") {
			if strings.HasPrefix(line, "url:") {
				fmt.Printf("   note: config-nats %q becomes \"url: %s\" (this run's nats-server; the proxy carries only HTTP)\n", line, natsURL)
				line = "url: " + natsURL
			}
			out = append(out, line)
		}
		_ = unstructured.SetNestedField(u.Object, strings.Join(out, "\n"), "data", "eventing-nats")
	case u.GetKind() == "Secret" && u.GetName() == "tickit-jwt":
		_ = unstructured.SetNestedField(u.Object, randomKey(), "stringData", "JWT_KEY")
	case u.GetKind() == "Secret" && u.GetName() == "tickit-stripe":
		_ = unstructured.SetNestedField(u.Object, "sk_test_conformance", "stringData", "STRIPE_KEY")
		_ = unstructured.SetNestedField(u.Object, "pk_test_conformance", "stringData", "STRIPE_PUBLISHABLE_KEY")
	case u.GetKind() == "PingSource" && u.GetName() == "expiration-tick":
		_ = unstructured.SetNestedField(u.Object, tickSchedule, "spec", "schedule")
		fmt.Printf("   note: PingSource expiration-tick runs on %q (every 2 s) instead of every minute\n", tickSchedule)
	case isKnativeService(u) && u.GetName() == "orders":
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		env, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
		for _, e := range env {
			if m := e.(map[string]any); m["name"] == "EXPIRATION_WINDOW" {
				m["value"] = expirationWindow
			}
		}
		_ = unstructured.SetNestedSlice(containers[0].(map[string]any), env, "env")
		_ = unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
		fmt.Printf("   note: orders' EXPIRATION_WINDOW is %s instead of 15m\n", expirationWindow)
	default:
		return false
	}
	return true
}

// runPatches is how many objects patchForRun must find: fewer means a manifest was
// renamed and the run would not be what it says.
const runPatches = 5

// applyApp applies config/ then knative/ as a user would (server-side apply), with the
// changes patchForRun names.
func (c *cluster) applyApp(ctx context.Context, root, natsURL string) (refs []*objectRef, services []string, err error) {
	patched := 0
	for i, dir := range []string{"config", "knative/services", "knative/eventing"} {
		files, err := yamlFiles(filepath.Join(root, dir))
		if err != nil {
			return nil, nil, err
		}
		objs, err := readObjects(files...)
		if err != nil {
			return nil, nil, err
		}
		for _, u := range objs {
			if patchForRun(u, natsURL) {
				patched++
			}
		}
		if err := c.applyAll(ctx, objs); err != nil {
			return nil, nil, err
		}
		fmt.Printf("   %s: %d objects accepted\n", dir, len(objs))
		if i == 0 {
			// The controller-manager, which would create it, does not run; the serving
			// webhook's dry run of each Service's pod needs it.
			if err := c.serviceAccount(ctx, "tickit"); err != nil {
				return nil, nil, err
			}
		}
		for _, u := range objs {
			if slices.Contains([]string{"Broker", "Trigger", "SinkBinding", "PingSource"}, u.GetKind()) {
				refs = append(refs, &objectRef{obj: u})
			}
			if isKnativeService(u) {
				services = append(services, u.GetName())
			}
		}
	}
	if patched != runPatches {
		return nil, nil, fmt.Errorf("changed %d objects for this run, want %d: a manifest this harness adjusts was renamed", patched, runPatches)
	}
	return refs, services, nil
}

func isKnativeService(u *unstructured.Unstructured) bool {
	return u.GetKind() == "Service" && u.GetAPIVersion() == "serving.knative.dev/v1"
}

// manifestFunctions names the Knative Services of knative/services that are functions
// of this repository (functions/<name>).
func manifestFunctions(root string) ([]string, error) {
	files, err := yamlFiles(filepath.Join(root, "knative/services"))
	if err != nil {
		return nil, err
	}
	objs, err := readObjects(files...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range objs {
		if _, err := os.Stat(filepath.Join(root, "functions", u.GetName(), "main.go")); isKnativeService(u) && err == nil {
			out = append(out, u.GetName())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no function Services under %s/knative/services", root)
	}
	return out, nil
}

// webhooksReady waits until both webhooks answer the API server: a dry-run write of an
// object only they can refuse is denied by them.
func (c *cluster) webhooksReady(ctx context.Context) error {
	for _, probe := range []struct {
		name string
		obj  string
	}{
		{"eventing webhook", `{"apiVersion":"sources.knative.dev/v1","kind":"PingSource","metadata":{"name":"probe","namespace":"default"},
			"spec":{"schedule":"not a schedule","sink":{"uri":"http://example.com"}}}`},
		{"serving webhook", `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"probe","namespace":"default"},
			"spec":{"template":{"spec":{"timeoutSeconds":99999,"containers":[{"image":"example.com/probe"}]}}}}`},
		{"eventing-natss webhook", `{"apiVersion":"messaging.knative.dev/v1alpha1","kind":"NatsJetStreamChannel","metadata":{"name":"probe","namespace":"default",
			"annotations":{"eventing.knative.dev/scope":"not-a-scope"}}}`},
	} {
		err := poll(ctx, probe.name+" answering", 2*time.Minute, func() error {
			err := c.dryRun(ctx, probe.obj)
			if err == nil {
				return fmt.Errorf("a broken object was accepted")
			}
			if !strings.Contains(err.Error(), "admission webhook") || !strings.Contains(err.Error(), "denied the request") {
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// dryRun server-side applies a JSON object with dryRun=All.
func (c *cluster) dryRun(ctx context.Context, obj string) error {
	var m map[string]any
	if err := json.Unmarshal([]byte(obj), &m); err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	r, err := c.resource(u)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(u.Object)
	_, err = r.Patch(ctx, u.GetName(), types.ApplyPatchType, b, metav1.PatchOptions{
		FieldManager: fieldManager, Force: ptrTo(true), FieldValidation: "Strict", DryRun: []string{metav1.DryRunAll}})
	return err
}

func ptrTo[T any](v T) *T { return &v }

// rejectsBroken applies broken copies of real manifests (dry run) and checks each is
// refused for the reason it was broken: proof that validation, not luck, let the real
// ones through.
func (c *cluster) rejectsBroken(ctx context.Context, root string) error {
	load := func(file string, kind string) (*unstructured.Unstructured, error) {
		objs, err := readObjects(filepath.Join(root, file))
		if err != nil {
			return nil, err
		}
		for _, u := range objs {
			if u.GetKind() == kind {
				return u, nil
			}
		}
		return nil, fmt.Errorf("%s: no %s", file, kind)
	}
	type broken struct {
		what, file, kind, want string
		breakIt                func(u *unstructured.Unstructured)
	}
	cases := []broken{
		{"Trigger with a typo'd field (spec.filtr)", "knative/eventing/31-triggers-tickets.yaml", "Trigger", `unknown field`,
			func(u *unstructured.Unstructured) {
				f, _, _ := unstructured.NestedMap(u.Object, "spec", "filter")
				unstructured.RemoveNestedField(u.Object, "spec", "filter")
				_ = unstructured.SetNestedMap(u.Object, f, "spec", "filtr")
			}},
		{"PingSource with a bad cron (61 * * * *)", "knative/eventing/50-pingsource.yaml", "PingSource", `denied the request`,
			func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(u.Object, "61 * * * *", "spec", "schedule")
			}},
		{"Trigger without a broker", "knative/eventing/31-triggers-tickets.yaml", "Trigger", `denied the request`,
			func(u *unstructured.Unstructured) { _ = unstructured.SetNestedField(u.Object, "", "spec", "broker") }},
		{"Service with timeoutSeconds 99999", "knative/services/12-orders.yaml", "Service", `denied the request`,
			func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(u.Object, int64(99999), "spec", "template", "spec", "timeoutSeconds")
			}},
	}
	for _, bc := range cases {
		u, err := load(bc.file, bc.kind)
		if err != nil {
			return err
		}
		u.SetName(u.GetName() + "-broken")
		bc.breakIt(u)
		b, _ := json.Marshal(u.Object)
		err = c.dryRun(ctx, string(b))
		if err == nil {
			return fmt.Errorf("%s: accepted, want refused", bc.what)
		}
		if !strings.Contains(err.Error(), bc.want) {
			return fmt.Errorf("%s: refused for another reason: %v", bc.what, err)
		}
		fmt.Printf("   refused: %s: %s\n", bc.what, firstLine(err.Error(), 160))
	}
	return nil
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// allReady waits until every Broker, Trigger, SinkBinding and PingSource is Ready.
func (c *cluster) allReady(ctx context.Context, refs []*objectRef) error {
	counts := map[string]int{}
	for _, ref := range refs {
		if err := c.waitReady(ctx, ref.obj); err != nil {
			return err
		}
		counts[ref.obj.GetKind()]++
	}
	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	fmt.Printf("   Ready: %s\n", strings.Join(kinds, ", "))
	return nil
}

// waitReady waits until one object's Ready condition is True.
func (c *cluster) waitReady(ctx context.Context, obj *unstructured.Unstructured) error {
	r, err := c.resource(obj)
	if err != nil {
		return err
	}
	return poll(ctx, describe(obj)+" Ready", 3*time.Minute, func() error {
		u, err := r.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		return condition(u, "Ready")
	})
}

// startFunctions runs each function with its Service's env, as stored in the API server.
func (c *cluster) startFunctions(ctx context.Context, s *supervisor, bin string, functions []string, proxy *dnsProxy, proxyURL string, deps map[string]string) (map[string]string, error) {
	sb, err := c.dyn.Resource(sinkBindGVR).Namespace("tickit").Get(ctx, "publishers", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	sinkURI, _, _ := unstructured.NestedString(sb.Object, "status", "sinkUri")
	fmt.Printf("   SinkBinding publishers: sinkUri %s\n", sinkURI)
	urls := map[string]string{}
	for _, name := range functions {
		svc, err := c.dyn.Resource(servicesGVR).Namespace("tickit").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		// No Jaeger runs here: an empty OTEL_EXPORTER_OTLP_ENDPOINT leaves the functions' tracing off.
		overrides := map[string]string{"MONGO_URL": "memory:", "REDIS_URL": deps["REDIS_URL"], "STRIPE_API_BASE": deps["STRIPE_API_BASE"],
			"OTEL_EXPORTER_OTLP_ENDPOINT": ""}
		env, err := c.functionEnv(ctx, svc, overrides)
		if err != nil {
			return nil, err
		}
		if svc.GetLabels()["tickit.dev/publishes"] == "true" {
			if !slices.Contains(env, "K_SINK="+sinkURI) {
				return nil, fmt.Errorf("service %s: the SinkBinding did not inject K_SINK=%s (env %v)", name, sinkURI, env)
			}
		}
		env = append(env, "HTTP_PROXY="+proxyURL, "NO_PROXY=127.0.0.1,localhost")
		port, err := startFunction(ctx, s, bin, name, env)
		if err != nil {
			return nil, err
		}
		proxy.route(name, "tickit", fmt.Sprintf("127.0.0.1:%d", port))
		urls[name] = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	return urls, nil
}

// latency is the distribution of send-to-receive times through the Broker.
type latency struct {
	n             int
	p50, p95, max time.Duration
	// Under load: 16 concurrent publishers, as knative/local's broker benchmark.
	loadN            int
	perSecond        float64
	loadP50, loadP99 time.Duration
}

// measureLatency adds a Trigger for probe events to the harness's receiver and times
// events sent to the Broker's ingress: one at a time, then from 16 concurrent publishers.
func (c *cluster) measureLatency(ctx context.Context, proxyURL string, probe *receiver) (latency, error) {
	tr := probeTrigger("conformance-probe", "dev.tickit.conformance.probe")
	if _, err := c.apply(ctx, tr); err != nil {
		return latency{}, err
	}
	if err := c.allReady(ctx, []*objectRef{{obj: tr}}); err != nil {
		return latency{}, err
	}
	client := brokerClient(proxyURL)
	const warm, n = 5, 50
	var ds []time.Duration
	for i := range warm + n {
		id := fmt.Sprintf("probe-%d-%s", i, randomKey()[:8])
		t := time.Now()
		if err := sendEvent(ctx, client, id, "dev.tickit.conformance.probe", "application/json", []byte(`{}`)); err != nil {
			return latency{}, err
		}
		e, ok := probe.waitFor(ctx, 30*time.Second, func(e event) bool { return e.attrs["id"] == id })
		if !ok {
			return latency{}, fmt.Errorf("probe event %s did not arrive within 30 s", id)
		}
		if i >= warm {
			ds = append(ds, e.received.Sub(t))
		}
	}
	slices.Sort(ds)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	lat := latency{n: n, p50: r(ds[n/2]), p95: r(ds[n*95/100]), max: r(ds[n-1])}

	const loadN, publishers = 1000, 16
	var mu sync.Mutex
	sent := map[string]time.Time{}
	ids := make(chan string)
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	start := time.Now()
	for range publishers {
		wg.Go(func() {
			for id := range ids {
				mu.Lock()
				sent[id] = time.Now()
				mu.Unlock()
				if err := sendEvent(ctx, client, id, "dev.tickit.conformance.probe", "application/json", []byte(`{}`)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range loadN {
		ids <- fmt.Sprintf("load-%d", i)
	}
	close(ids)
	wg.Wait()
	select {
	case err := <-errs:
		return latency{}, err
	default:
	}
	got, ok := probe.collect(ctx, 30*time.Second, "load-", loadN)
	if !ok {
		return latency{}, fmt.Errorf("%d of %d load events arrived within 30 s", len(got), loadN)
	}
	var last time.Time
	ds = ds[:0]
	for _, e := range got {
		ds = append(ds, e.received.Sub(sent[e.attrs["id"]]))
		if e.received.After(last) {
			last = e.received
		}
	}
	slices.Sort(ds)
	lat.loadN, lat.perSecond = loadN, float64(loadN)/last.Sub(start).Seconds()
	lat.loadP50, lat.loadP99 = r(ds[loadN/2]), r(ds[loadN*99/100])
	return lat, nil
}

// probeTrigger is a Trigger of the harness: events of type typ go to its receiver.
func probeTrigger(name, typ string) *unstructured.Unstructured {
	return uriTrigger(name, typ, "http://conformance-probe.tickit.svc.cluster.local", nil)
}

// uriTrigger is a Trigger of the Broker default for events of type typ, to a subscriber
// URI, with a delivery spec when delivery is not nil.
func uriTrigger(name, typ, uri string, delivery map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"broker": "default",
		"filter":     map[string]any{"attributes": map[string]any{"type": typ}},
		"subscriber": map[string]any{"uri": uri}}
	if delivery != nil {
		spec["delivery"] = delivery
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
		"metadata": map[string]any{"name": name, "namespace": "tickit"},
		"spec":     spec,
	}}
}

// brokerURL is the Broker's ingress, as K_SINK names it.
const brokerURL = "http://broker-ingress.knative-eventing.svc.cluster.local/tickit/default"

func brokerClient(proxyURL string) *http.Client {
	u, _ := url.Parse(proxyURL)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(u), MaxIdleConnsPerHost: 64}}
}

// sendEvent posts a binary-mode CloudEvent to the Broker; an answer other than 2xx is an error.
func sendEvent(ctx context.Context, client *http.Client, id, typ, contentType string, data []byte) error {
	status, err := postEvent(ctx, client, id, typ, contentType, data)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("broker ingress answered %d to event %s", status, id)
	}
	return nil
}

// postEvent posts a binary-mode CloudEvent to the Broker and returns the ingress's status.
func postEvent(ctx context.Context, client *http.Client, id, typ, contentType string, data []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, brokerURL, strings.NewReader(string(data)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Source", "conformance")
	req.Header.Set("Content-Type", contentType)
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}
