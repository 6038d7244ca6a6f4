// Package system runs the whole tickit application on one machine from the manifests under
// knative/: the backing services, every function as a scale-to-zero process, the Broker and
// its Triggers, the PingSources, and an ingress that routes by Host like Kourier.
package system

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/manifest"
	"github.com/tickit/tickit/knative/local/ping"
	"github.com/tickit/tickit/knative/local/proc"
	"github.com/tickit/tickit/knative/local/serving"
)

// localStripeKey is the secret key functions get when they talk to stripe-mock, which takes
// any test-mode key.
const localStripeKey = "sk_test_tickitlocal"

// Config says where and how to run.
type Config struct {
	Root string        // the repository (go.work); manifests are read from Root/knative
	Data string        // the data dir: NATS store, databases, Redis data, binaries, JWT key
	Addr string        // the ingress address, 127.0.0.1:8080 by default; port 0 picks one
	Tick time.Duration // > 0: PingSources fire at this period instead of their schedule
	// Idle: a function without traffic this long scales to zero. 0: the Service's
	// autoscaling.knative.dev/window annotation, else 60s (Knative's default stable window).
	Idle time.Duration
	// BinDir is where the functions are built (default Data/bin). go build leaves binaries
	// that are up to date alone, so runtimes may share one.
	BinDir string
	// Getenv reads the user's settings (NATS_URL, MONGO_URL, REDIS_URL, STRIPE_KEY,
	// STRIPE_API_BASE, JWT_KEY, SENDGRID_API_KEY, SENDGRID_API_BASE, EXPIRATION_WINDOW, ...):
	// os.Getenv when nil.
	Getenv func(string) string
	Out    io.Writer // one line per component, cold starts, warnings (default os.Stdout); written concurrently
	// FunctionOutput receives every function's and backing service's output, each line
	// prefixed with its name (default io.Discard).
	FunctionOutput io.Writer
	// Wrap, when set, wraps every function's handler in the ingress (requests from users,
	// other functions and the Broker all pass it): a place to observe or inject faults.
	Wrap func(function string, h http.Handler) http.Handler
}

// System is tickit running locally.
type System struct {
	cfg      Config
	app      *manifest.App
	log      *zap.SugaredLogger
	ln       net.Listener
	srv      *http.Server
	nats     *backing.NATS
	redis    *backing.Redis
	stripe   *backing.StripeMock
	secrets  map[string]string
	brokers  []*broker.Broker
	services map[string]*serving.Service
	images   map[string]string // services that run a prebuilt image, which cannot run here
	local    map[string]bool   // cluster-local services
	stop     context.CancelFunc
	pings    sync.WaitGroup
	closers  []func()
	jaeger   string   // the trace viewer's URL (tracing.go)
	traceEnv []string // OTEL_* settings of every function (tracing.go)
}

// URL is the ingress, e.g. http://127.0.0.1:8080.
func (s *System) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is the ingress address.
func (s *System) Addr() string { return s.ln.Addr().String() }

// Service returns a running function by name (nil when the manifests have no such function).
func (s *System) Service(name string) *serving.Service { return s.services[name] }

// Start brings everything up and returns once the ingress serves. Close stops it all.
func Start(ctx context.Context, cfg Config) (_ *System, err error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.FunctionOutput == nil {
		cfg.FunctionOutput = io.Discard
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Data, err = filepath.Abs(cfg.Data); err != nil {
		return nil, err
	}
	if cfg.BinDir == "" {
		cfg.BinDir = filepath.Join(cfg.Data, "bin")
	}
	s := &System{cfg: cfg, log: newLogger(cfg.Out), services: map[string]*serving.Service{}, images: map[string]string{}, local: map[string]bool{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.app, err = manifest.Load(filepath.Join(cfg.Root, "knative")); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Data, 0o755); err != nil {
		return nil, err
	}
	// The listener comes first: its address is where functions and the Broker send events.
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("ingress: %w (is another tickit running? ADDR picks another address)", err)
	}
	// Building the functions and starting stripe-mock are the slow parts: they overlap.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	built := make(chan error, 1)
	var bins map[string]string
	go func() {
		var err error
		bins, err = s.build(ctx)
		built <- err
	}()
	if err := s.startBacking(ctx); err != nil {
		cancel()
		<-built
		return nil, err
	}
	if err := <-built; err != nil {
		return nil, err
	}
	if err := s.startFunctions(bins); err != nil {
		return nil, err
	}
	if err := s.startBrokers(ctx); err != nil {
		return nil, err
	}
	s.srv = &http.Server{Handler: s.ingress(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(s.ln) }()
	if err := s.startPings(); err != nil {
		return nil, err
	}
	return s, nil
}

// startBacking starts NATS, Redis and stripe-mock (unless the user points at real ones),
// and reads the JWT key.
func (s *System) startBacking(ctx context.Context) error {
	env := s.cfg.Getenv
	var err error
	if u := env("NATS_URL"); u != "" {
		s.nats, err = backing.ConnectNATS(u)
	} else {
		s.nats, err = backing.StartNATS(filepath.Join(s.cfg.Data, "nats"))
	}
	if err != nil {
		return err
	}
	s.closers = append(s.closers, s.nats.Close)
	s.line("nats", "JetStream, %s", s.nats.Where())

	if u := env("REDIS_URL"); u != "" {
		s.redis = &backing.Redis{URL: u, Where: "REDIS_URL"}
	} else {
		if s.redis, err = backing.StartRedis(filepath.Join(s.cfg.Data, "redis"), proc.Prefix(s.cfg.FunctionOutput, "[redis] ")); err != nil {
			return err
		}
		s.closers = append(s.closers, s.redis.Close)
	}
	s.line("redis", "%s", s.redis.Where)

	key := env("JWT_KEY")
	if key == "" {
		if key, err = backing.JWTKey(s.cfg.Data); err != nil {
			return err
		}
	}
	s.secrets = map[string]string{
		"JWT_KEY":                key,
		"STRIPE_KEY":             env("STRIPE_KEY"),
		"STRIPE_PUBLISHABLE_KEY": env("STRIPE_PUBLISHABLE_KEY"),
		"SENDGRID_API_KEY":       env("SENDGRID_API_KEY"),
	}
	switch {
	case env("STRIPE_API_BASE") != "":
		if s.secrets["STRIPE_KEY"] == "" {
			s.secrets["STRIPE_KEY"] = localStripeKey
		}
		s.stripe = &backing.StripeMock{URL: env("STRIPE_API_BASE")}
		s.line("stripe", "STRIPE_API_BASE %s", s.stripe.URL)
	case s.secrets["STRIPE_KEY"] == "":
		s.secrets["STRIPE_KEY"] = localStripeKey
		fixtures := filepath.Join(s.cfg.Root, "functions", "payments", "testdata", "stripe-fixtures.json")
		if s.stripe, err = backing.StartStripeMock(s.cfg.Root, fixtures, proc.Prefix(s.cfg.FunctionOutput, "[stripe-mock] ")); err != nil {
			return err
		}
		s.closers = append(s.closers, s.stripe.Close)
		s.line("stripe", "stripe-mock %s", s.stripe.URL)
	default:
		s.line("stripe", "api.stripe.com with STRIPE_KEY")
	}
	return s.startTracing()
}

// build compiles every function of the manifests (the Services with a ko:// image) and
// returns the binaries by import path.
func (s *System) build(ctx context.Context) (map[string]string, error) {
	var pkgs []string
	for _, svc := range s.app.Services {
		if pkg := manifest.Function(svc); pkg != "" {
			pkgs = append(pkgs, pkg)
		}
	}
	start := time.Now()
	bins, err := serving.Build(ctx, s.cfg.Root, s.cfg.BinDir, pkgs)
	if err != nil {
		return nil, err
	}
	s.line("build", "%d functions in %v -> %s", len(pkgs), time.Since(start).Round(10*time.Millisecond), s.cfg.BinDir)
	return bins, nil
}

// startFunctions sets up a Service for every function of the manifests.
func (s *System) startFunctions(bins map[string]string) error {
	for _, svc := range s.app.Services {
		s.local[svc.Name] = clusterLocal(svc)
		pkg := manifest.Function(svc)
		if pkg == "" {
			s.images[svc.Name] = svc.Spec.Template.Spec.Containers[0].Image
			s.line("function", "%-10s not run here: prebuilt image %s", svc.Name, s.images[svc.Name])
			continue
		}
		env, err := s.functionEnv(svc)
		if err != nil {
			return err
		}
		min, idle := minScale(svc), s.idle(svc)
		s.services[svc.Name] = serving.New(serving.Spec{
			Name: svc.Name, Binary: bins[pkg], Env: env, MinScale: min, Idle: idle,
			Output: proc.Prefix(s.cfg.FunctionOutput, "["+svc.Name+"] "), Log: s.log,
		})
		where := fmt.Sprintf("http://%s.%s.%s:%s", svc.Name, svc.Namespace, ExternalDomain, port(s.Addr()))
		switch {
		case clusterLocal(svc):
			where = "cluster-local, http://" + svc.Name + "." + svc.Namespace + ".svc.cluster.local"
		case svc.Name == "client":
			where = s.URL() + " (any other host)"
		}
		scale := fmt.Sprintf("scales to zero after %v", idle)
		if min > 0 {
			scale = fmt.Sprintf("min-scale %d", min)
		}
		s.line("function", "%-10s %s (%s)", svc.Name, where, scale)
	}
	return nil
}

// startBrokers opens every Broker with its Triggers.
func (s *System) startBrokers(ctx context.Context) error {
	for _, br := range s.app.Brokers {
		b, err := broker.New(ctx, broker.Config{
			Broker: br, Triggers: s.app.Triggers, JS: s.nats.JS, Resolve: s.resolve,
			Client: s.clusterClient(), Log: s.log,
		})
		if err != nil {
			return err
		}
		s.brokers = append(s.brokers, b)
		n := 0
		for _, t := range s.app.Triggers {
			if t.Spec.Broker == br.Name && t.Namespace == br.Namespace {
				n++
			}
		}
		s.line("broker", "%s/%s with %d triggers at %s", br.Namespace, br.Name, n, BrokerURL(br.Namespace, br.Name))
	}
	return nil
}

// startPings runs every PingSource, at the TICK period when one is set.
func (s *System) startPings() error {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	for _, ps := range s.app.PingSources {
		sink, err := s.resolve(ps.Spec.Sink)
		if err != nil || sink == nil {
			return fmt.Errorf("pingsource %s: sink: %v", ps.Name, err)
		}
		src, err := ping.New(ps, sink, s.cfg.Tick, s.clusterClient(), s.log)
		if err != nil {
			return err
		}
		s.pings.Add(1)
		go func() { defer s.pings.Done(); src.Run(ctx) }()
		every := fmt.Sprintf("schedule %q", ps.Spec.Schedule)
		if s.cfg.Tick > 0 {
			every = fmt.Sprintf("every %v (TICK; the manifest's schedule is %q)", s.cfg.Tick, ps.Spec.Schedule)
		}
		s.line("ping", "%s %s", ps.Name, every)
	}
	return nil
}

// Close stops everything: event sources, the Brokers (deliveries in flight finish), the
// ingress, the functions (SIGTERM, drained) and the backing services.
func (s *System) Close() {
	if s.stop != nil {
		s.stop()
		s.pings.Wait()
	}
	for _, b := range s.brokers {
		b.Close()
	}
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
	} else if s.ln != nil {
		s.ln.Close()
	}
	var wg sync.WaitGroup
	for _, svc := range s.services {
		wg.Add(1)
		go func() { defer wg.Done(); svc.Close() }()
	}
	wg.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	_ = s.log.Sync()
}

// Names lists the functions run here, sorted.
func (s *System) Names() []string {
	names := make([]string, 0, len(s.services))
	for n := range s.services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *System) line(component, format string, args ...any) {
	fmt.Fprintf(s.cfg.Out, "%-9s %s\n", component, fmt.Sprintf(format, args...))
}

// newLogger writes the runtime's own messages (cold starts, scale to zero, dead letters) as
// short console lines.
func newLogger(out io.Writer) *zap.SugaredLogger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	enc.CallerKey, enc.StacktraceKey, enc.NameKey = "", "", ""
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(out), zap.InfoLevel)
	return zap.New(core).Sugar()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// idle is how long the function may go without traffic: IDLE, else the revision's
// autoscaling window (the stable window), else Knative's default of 60s.
func (s *System) idle(svc *servingv1.Service) time.Duration {
	if s.cfg.Idle > 0 {
		return s.cfg.Idle
	}
	if d, err := time.ParseDuration(svc.Spec.Template.Annotations["autoscaling.knative.dev/window"]); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}

// minScale reads autoscaling.knative.dev/min-scale from the revision template.
func minScale(svc *servingv1.Service) int {
	var n int
	_, _ = fmt.Sscan(svc.Spec.Template.Annotations["autoscaling.knative.dev/min-scale"], &n)
	return n
}

// clusterLocal: the Service is only reachable inside the cluster.
func clusterLocal(svc *servingv1.Service) bool {
	return svc.Labels["networking.knative.dev/visibility"] == "cluster-local"
}
