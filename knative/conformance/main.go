// Command conformance runs tickit's manifests on real Knative (make conformance): etcd,
// kube-apiserver, Knative Eventing's and Serving's own binaries and eventing-natss's
// JetStream channel (webhook, controller, dispatcher, built from its source snapshot) as
// local processes over a real nats-server, the manifests applied through the API server
// and the admission webhooks, and the whole story through Knative's MT channel-based
// Broker over a NatsJetStreamChannel, with the functions as processes. It plays
// Serving's part (no pods here) openly: each Knative Service's status says Ready at the
// address a Route would give it, and the function runs as a process behind that name.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	root := flag.String("root", "../..", "the repository root (manifests, functions)")
	bin := flag.String("bin", "", "where build.sh put the binaries (default <root>/.tickit/conformance/bin)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err := run(ctx, *root, *bin)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted (%w)", err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nFAIL after %s: %v\n", since(start), err)
		os.Exit(1)
	}
	fmt.Printf("\nPASS in %s\n", since(start))
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }

// step prints one line of progress with the time it took.
func step(name string, f func() error) error {
	t := time.Now()
	fmt.Printf("-- %s ...\n", name)
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("ok %s (%s)\n", name, since(t))
	return nil
}

const (
	knativeVersion = "v0.50.0"
	kubeVersion    = "v1.37.2"
	etcdVersion    = "v3.7.0"
	// The expiry part of the story: orders hold a ticket this long, and the PingSource
	// ticks every 2 s (a 6-field schedule, seconds first) instead of every minute.
	expirationWindow = "4s"
	tickSchedule     = "*/2 * * * * *"
)

func run(ctx context.Context, root, bin string) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if bin == "" {
		bin = filepath.Join(root, ".tickit/conformance/bin")
	}
	// Checked first: a run in progress holds the port, and its directory must stay.
	l, err := net.Listen("tcp", ":8080")
	if err != nil {
		return fmt.Errorf("port 8080 is taken (the JetStream channel dispatcher hard-codes it; make run and another make conformance use it too): %w", err)
	}
	l.Close()
	dir := filepath.Join(root, ".tickit/conformance/run")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	logs := filepath.Join(dir, "logs")
	for _, d := range []string{logs, filepath.Join(dir, "pki"), filepath.Join(dir, "functions")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	natss, err := loadNatss(bin)
	if err != nil {
		return err
	}
	fmt.Printf("conformance: Kubernetes %s (etcd %s), Knative Eventing and Serving %s, %s, nats-server %s, as local processes\n",
		kubeVersion, etcdVersion, knativeVersion, natss, natsVersion)
	fmt.Printf("logs: %s\n", logs)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := &supervisor{logs: logs, failed: func(err error) { cancel(err) }}
	defer func() {
		t := time.Now()
		s.stopAll()
		fmt.Printf("-- stopped every process (%s)\n", since(t))
	}()

	kbin := map[string]string{
		"etcd":           filepath.Join(bin, "etcd-"+etcdVersion, "etcd"),
		"kube-apiserver": filepath.Join(bin, "kube-"+kubeVersion, "kube-apiserver"),
	}
	knBin := filepath.Join(bin, "knative-"+knativeVersion)
	natsBin := filepath.Join(bin, "nats-server-"+natsVersion, "nats-server")
	for _, b := range []string{kbin["etcd"], kbin["kube-apiserver"], filepath.Join(knBin, "eventing-webhook"), natsBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is missing: run knative/conformance/build.sh (make conformance does)", b)
		}
	}
	ip, err := hostIP()
	if err != nil {
		return err
	}

	// The functions the manifests run (each Knative Service of knative/services with a
	// functions/<name>), built while the cluster starts.
	functions, err := manifestFunctions(root)
	if err != nil {
		return err
	}
	fnBin := filepath.Join(dir, "functions")
	fnBuilt := make(chan error, 1)
	go func() { fnBuilt <- buildFunctions(root, fnBin, functions) }()

	var c *cluster
	var ready time.Duration
	t0 := time.Now()
	var etcd string
	if err := step("etcd "+etcdVersion, func() (err error) {
		etcd, err = startEtcd(ctx, s, kbin["etcd"], dir)
		return err
	}); err != nil {
		return err
	}
	s.tier = 1
	if err := step("kube-apiserver "+kubeVersion, func() error {
		certs, err := newPKI(filepath.Join(dir, "pki"))
		if err != nil {
			return err
		}
		c, err = startAPIServer(ctx, s, kbin["kube-apiserver"], dir, etcd, ip, certs)
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("   API server for any Kubernetes client while this runs: KUBECONFIG=%s\n", c.kubeconfig)

	eventingSrc, servingSrc, err := knativeSources(filepath.Join(root, "knative/conformance/tools/knative"))
	if err != nil {
		return err
	}
	if err := step("install Knative Eventing (core, MT channel-based Broker), Serving (core) and eventing-natss's eventing-jsm.yaml (config/webhook, config/jetstream)", func() error {
		files, err := knativeInstall(eventingSrc, servingSrc)
		if err != nil {
			return err
		}
		jsm, err := natss.install()
		if err != nil {
			return err
		}
		objs, err := readObjects(append(files, jsm...)...)
		if err != nil {
			return err
		}
		fmt.Printf("   %d objects from %d files of knative.dev/eventing and knative.dev/serving %s and %d of eventing-natss %s\n",
			len(objs), len(files), knativeVersion, len(jsm), natss.snapshot["commit"])
		if err := c.applyAll(ctx, objs); err != nil {
			return err
		}
		return c.aggregateClusterRoles(ctx)
	}); err != nil {
		return err
	}

	proxy := newDNSProxy()
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(proxyLn, proxy) }()
	proxyURL := "http://" + proxyLn.Addr().String()

	s.tier = 2 // everything else stops before the API server
	pe := &procEnv{proxy: proxyURL, ip: ip}
	var kp knativePorts
	if err := step("start Knative's and eventing-natss's processes (webhooks, controllers, JetStream channel controller, Broker ingress and filter, PingSource adapter)", func() error {
		p, err := ports(5)
		if err != nil {
			return err
		}
		kp = knativePorts{eventingWebhook: p[0], natsWebhook: p[1], servingWebhook: p[2], ingress: p[3], filter: p[4]}
		for key, targets := range kp.backends() {
			name, ns, _ := strings.Cut(key, ".")
			for _, local := range targets {
				proxy.route(name, ns, fmt.Sprintf("127.0.0.1:%d", local))
			}
		}
		proxy.route(dispatcherName, "knative-eventing", fmt.Sprintf("127.0.0.1:%d", dispatcherPort))
		if err := c.endpoints(ctx, ip, kp.backends()); err != nil {
			return err
		}
		go c.deploymentsAvailable(ctx)
		if err := c.startKnative(s, pe, knBin, natss, kp); err != nil {
			return err
		}
		return c.webhooksReady(ctx)
	}); err != nil {
		return err
	}
	fmt.Printf("   note: eventing-natss is built with two patches: the health-probe port from KNATIVE_HEALTH_PROBES_PORT (as Knative's), the dispatcher's config-nats from CONFIG_NATS_DIR instead of /etc/config-nats\n")

	// NATS with JetStream (config/10-nats.yaml's StatefulSet), then the data stores and
	// Stripe, as the functions' tests use them.
	var nats *natsServer
	if err := step("nats-server "+natsVersion+" with JetStream (file store under the run directory)", func() (err error) {
		nats, err = startNATS(ctx, s, natsBin, dir)
		return err
	}); err != nil {
		return err
	}
	deps, err := startBackends(ctx, s, root, dir)
	if err != nil {
		return err
	}

	var app []*objectRef
	var services []string
	if err := step("apply config/ and knative/ (server-side apply, strict fields, both webhooks)", func() error {
		app, services, err = c.applyApp(ctx, root, nats.url())
		return err
	}); err != nil {
		return err
	}
	if err := step("the webhooks reject broken manifests", func() error { return c.rejectsBroken(ctx, root) }); err != nil {
		return err
	}

	dead, err := newReceiver()
	if err != nil {
		return err
	}
	proxy.route("dead-letters", "tickit", dead.addr)
	probe, err := newReceiver()
	if err != nil {
		return err
	}
	proxy.route("conformance-probe", "tickit", probe.addr)

	// Serving's part, in a cluster's order: the Broker and the SinkBinding first (the
	// functions need K_SINK), then each function runs and only then is its Service
	// Ready, then the Triggers and the PingSource resolve the Services' addresses.
	var disp *dispatcher
	if err := step("play the JetStream dispatcher's pod once the channel controller created its Deployment (config-nats as its volume)", func() (err error) {
		disp, err = c.playDispatcher(ctx, s, pe, filepath.Join(natss.dir, "dispatcher"), ip, filepath.Join(dir, "config-nats"))
		return err
	}); err != nil {
		return err
	}
	if err := step("Broker and SinkBinding Ready", func() error {
		return c.allReady(ctx, kinds(app, "Broker", "SinkBinding"))
	}); err != nil {
		return err
	}
	var urls map[string]string
	if err := step("run the functions with their Services' env (K_SINK injected by the SinkBinding)", func() error {
		if err := <-fnBuilt; err != nil {
			return err
		}
		urls, err = c.startFunctions(ctx, s, fnBin, functions, proxy, proxyURL, deps)
		return err
	}); err != nil {
		return err
	}
	if err := step("play Serving: each Knative Service Ready at its cluster address once its process is up", func() error {
		for _, name := range services {
			if _, ok := urls[name]; !ok && name != "dead-letters" {
				return fmt.Errorf("service %s: no function runs it", name)
			}
			if err := c.serviceReady(ctx, name, "tickit"); err != nil {
				return err
			}
		}
		fmt.Printf("   %d Services; dead-letters is the harness's Go receiver (Knative's event_display image cannot run here)\n", len(services))
		return nil
	}); err != nil {
		return err
	}
	if err := step("every Broker, Trigger, SinkBinding and PingSource Ready", func() error {
		return c.allReady(ctx, app)
	}); err != nil {
		return err
	}
	ready = time.Since(t0)
	fmt.Printf("   from an empty etcd to all Ready: %s\n", ready.Round(10*time.Millisecond))

	var lat latency
	var ch channelInfo
	if err := step("the Broker's channel is a NatsJetStreamChannel with config/'s stream limits", func() (err error) {
		ch, err = c.checkChannel(ctx, root, nats)
		return err
	}); err != nil {
		return err
	}
	if err := step("event latency through the Broker (ingress, NatsJetStreamChannel, dispatcher, filter, Trigger)", func() (err error) {
		lat, err = c.measureLatency(ctx, proxyURL, probe)
		return err
	}); err != nil {
		return err
	}
	st := &story{urls: urls, proxy: proxyURL, logs: logs, dead: dead, probe: probe, c: c}
	sink, err := newReceiver()
	if err != nil {
		return err
	}
	proxy.route("conformance-faults", "tickit", sink.addr)
	delivery, err := tickitDelivery(root)
	if err != nil {
		return err
	}
	fl := &faults{c: c, root: root, proxy: proxyURL, nats: nats, disp: disp, sink: sink, dead: dead, delivery: delivery}
	if err := step("fault Triggers (tickit's delivery spec) to the harness's fault sink", func() error { return fl.setup(ctx) }); err != nil {
		return err
	}
	parts := st.parts()
	// The NATS outage comes mid-story: the parts after it run on the restarted server.
	parts = slices.Insert(parts, 2, part{"fault: nats-server stopped mid-story, started again on its store", fl.natsRestart})
	parts = append(parts,
		part{"fault: the JetStream dispatcher SIGKILLed with deliveries in flight, started again", fl.dispatcherKill},
		part{"fault: a subscriber answering 503 for a while", fl.retry503},
		part{"fault: a malformed event, an unknown type, a 409 and a 404", fl.refusals},
	)
	for _, part := range parts {
		if err := step(part.name, func() error { return part.run(ctx) }); err != nil {
			return err
		}
	}

	// Disagreements fail the run after the summary (which has the figures); other errors at once.
	var diff string
	var disagree error
	if err := step("differential table: knative/delivery's scenarios through the real Broker and knative/local's", func() (err error) {
		diff, disagree, err = differential(ctx, c, fmt.Sprintf("http://127.0.0.1:%d/tickit/default", kp.ingress), nats.url())
		return err
	}); err != nil {
		return err
	}

	procs, mib := s.rss()
	fmt.Printf("\nsummary\n")
	fmt.Printf("  empty etcd to all Ready:      %s\n", ready.Round(10*time.Millisecond))
	fmt.Printf("  memory:                       %.0f MiB resident in %d processes (etcd, API server, Knative, functions, Redis, stripe-mock)\n", mib, procs)
	fmt.Printf("  event latency, one at a time: p50 %s, p95 %s, max %s over %d events (Broker ingress -> channel -> filter -> subscriber)\n", lat.p50, lat.p95, lat.max, lat.n)
	fmt.Printf("  under load, 16 publishers:    %.0f events/s, p50 %s, p99 %s over %d events (the method of knative/local's BenchmarkBrokerToSubscriber)\n", lat.perSecond, lat.loadP50, lat.loadP99, lat.loadN)
	fmt.Printf("  channel:                      %s %s/%s, JetStream stream %s (%s); %s, nats-server %s\n", ch.kind, ch.namespace, ch.name, ch.stream, ch.limits, natss, natsVersion)
	fmt.Printf("  one-machine changes:          config-nats url %s; eventing-natss patched for the probe port and config-nats directory\n", nats.url())
	fmt.Printf("  differential table:           %s\n", diff)
	fmt.Printf("  faults on the real data plane:\n")
	for _, line := range fl.report {
		fmt.Printf("    - %s\n", line)
	}
	if crashes := disp.crashLog(); len(crashes) > 0 {
		fmt.Printf("  JetStream dispatcher exited on its own %d time(s), restarted as the kubelet would:\n", len(crashes))
		for _, c := range crashes {
			fmt.Printf("    - %s\n", c)
		}
	}
	fmt.Printf("  Serving: played by the harness (Service status + function processes); dead-letters: a Go receiver in the harness\n")
	return disagree
}

// startBackends starts redis-server and stripe-mock.
func startBackends(ctx context.Context, s *supervisor, root, dir string) (map[string]string, error) {
	out := map[string]string{}
	err := step("redis-server and stripe-mock", func() error {
		p, err := ports(3)
		if err != nil {
			return err
		}
		if _, err := s.start("redis", "redis-server", []string{"--port", fmt.Sprint(p[0]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, nil); err != nil {
			return err
		}
		cmd := exec.Command("go", "tool", "-n", "stripe-mock")
		cmd.Dir = filepath.Join(root, "functions")
		cmd.Env = append(os.Environ(), "GOWORK=")
		b, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("go tool -n stripe-mock: %w", err)
		}
		if _, err := s.start("stripe-mock", strings.TrimSpace(string(b)), []string{
			"-http-addr", fmt.Sprintf("127.0.0.1:%d", p[1]), "-https-addr", fmt.Sprintf("127.0.0.1:%d", p[2]),
			"-fixtures", filepath.Join(root, "functions/payments/testdata/stripe-fixtures.json"),
		}, nil); err != nil {
			return err
		}
		out["REDIS_URL"] = fmt.Sprintf("redis://127.0.0.1:%d/0", p[0])
		out["STRIPE_API_BASE"] = fmt.Sprintf("http://127.0.0.1:%d", p[1])
		return poll(ctx, "stripe-mock listening", time.Minute, func() error {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p[1]))
			if err != nil {
				return err
			}
			return conn.Close()
		})
	})
	return out, err
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// kinds returns the refs of the given kinds.
func kinds(refs []*objectRef, kind ...string) []*objectRef {
	var out []*objectRef
	for _, r := range refs {
		if slices.Contains(kind, r.obj.GetKind()) {
			out = append(out, r)
		}
	}
	return out
}
