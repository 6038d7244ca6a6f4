package proof

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/system"
)

// Concurrency is how many clients the route benchmarks run at once.
const Concurrency = 50

// Profile is one store and the data set sizes measured on it.
type Profile struct {
	Name     string // the metric prefix: file, memory, wire, traced
	MongoURL string // "" is the default: one lungo file per function under the data dir
	Wire     bool   // MONGO_URL is a FerretDB started for the profile (the official driver's path)
	Users    int    // signed up, then signed in; the first 10 sell, the others buy
	Tickets  int    // created; the list benchmark runs over all of them, the rest stay unordered
	Stories  int    // full purchase stories, 5 at a time
	Paid     int    // orders paid by the pay benchmark
	Expiring int    // orders left to expire, all due at once
	Window   time.Duration
	Traced   bool // Jaeger started and every span exported to it, as TRACE=1 make run (traced.go)
}

// Profiles are the data sets at BENCH_SCALE s. The file store (what make run uses) rewrites
// a function's whole file on every commit, so it gets a small set. The in-memory lungo store
// (MONGO_URL=memory:) carries the 10,000-ticket list; lungo has no index-backed queries, so
// every order scans the replicas and the expiring orders are 1,000 at scale 1 (10,000 at
// BENCH_SCALE=10, which takes a long while on 2 cores).
func Profiles(s float64) []Profile {
	n := func(x int) int { return max(1, int(math.Round(float64(x)*s))) }
	d := func(x time.Duration) time.Duration { return time.Duration(float64(x) * max(s, 1)) }
	file := Profile{Name: "file", Users: n(60), Stories: 20, Paid: n(50), Expiring: n(150), Window: d(30 * time.Second)}
	file.Tickets = file.Stories + file.Paid + file.Expiring
	mem := Profile{Name: "memory", MongoURL: "memory:", Users: n(100), Stories: 50, Paid: n(100), Expiring: n(1000), Window: d(90 * time.Second)}
	mem.Tickets = max(10000, mem.Stories+mem.Paid+mem.Expiring)
	// The production path: each function on the official driver, its database on a wire
	// server in another process (FerretDB here, MongoDB in a cluster), so the CPU per request
	// is the function's alone, as a pod's would be.
	// FerretDB v1 filters and sorts the list in its own process (measured: about 1 list/s at 50
	// clients over 1,000 tickets), so its set is small and its list route short (listRequests).
	wire := Profile{Name: "wire", Wire: true, Users: n(30), Stories: 10, Paid: n(50), Expiring: n(100), Window: d(60 * time.Second)}
	wire.Tickets = max(300, wire.Stories+wire.Paid+wire.Expiring)
	return []Profile{file, mem, wire, tracedProfile(mem)}
}

// Bench runs every measurement and prints the table; only a system that cannot run is an
// error, never a timing. only names the profiles to run (none: every one).
func Bench(ctx context.Context, root string, scale float64, only []string, t *Table, log io.Writer) error {
	t.Note("tickit bench, BENCH_SCALE=%g, %d clients per route, on %s", scale, Concurrency, machine())
	for i, p := range Profiles(scale) {
		if len(only) > 0 && !slices.Contains(only, p.Name) {
			continue
		}
		// The cold starts and the event path are measured once, with the first profile.
		if err := benchProfile(ctx, root, p, i == 0, t, log); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

func benchProfile(ctx context.Context, root string, p Profile, first bool, t *Table, log io.Writer) error {
	data, err := dataDir(root, "bench-"+p.Name)
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	settings := map[string]string{"EXPIRATION_WINDOW": p.Window.String()}
	if p.Wire {
		f, err := backing.StartFerretDB(root, filepath.Join(data, "ferretdb"), log)
		if err != nil {
			return err
		}
		defer f.Close()
		p.MongoURL = f.URL
	}
	if p.MongoURL != "" {
		settings["MONGO_URL"] = p.MongoURL
	}
	if p.Traced {
		if err := traceSettings(settings); err != nil {
			return err
		}
	}
	// The PingSource waits a day: the expiration benchmark sends the one tick itself.
	w, err := Start(ctx, Options{Root: root, Data: data, Tick: 24 * time.Hour, Idle: time.Hour, Settings: settings, Output: log})
	if err != nil {
		return err
	}
	defer w.Close()
	store := "lungo file store (MONGO_URL unset: one file per function, rewritten whole on every commit)"
	switch {
	case p.Wire:
		store = "FerretDB v1 (SQLite) in its own process, every function on the official driver (MONGO_URL=" + p.MongoURL + ")"
	case p.MongoURL != "":
		store = "lungo in-memory store (MONGO_URL=" + p.MongoURL + ")"
	}
	t.Note("%s: %s; %d users, %d tickets, %d stories, %d orders paid, %d orders expiring, EXPIRATION_WINDOW=%v",
		p.Name, store, p.Users, p.Tickets, p.Stories, p.Paid, p.Expiring, p.Window)
	if first {
		if err := coldStarts(w, t, ""); err != nil {
			return err
		}
		if err := eventPath(w, t, 2000); err != nil {
			return err
		}
	}
	if p.Traced {
		if err := tracedStarts(w, t); err != nil {
			return err
		}
	}
	b := &bencher{World: w, t: t, p: p}
	for _, step := range []func() error{b.signUp, b.signIn, b.createTickets, b.listTickets, b.healthz, b.waitReplicas, b.stories, b.createOrders, b.pay, b.expire} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// coldStarts: each function 20 times from exec to its first answered request (GET /healthz
// through the ingress), then its resident memory when idle; prefix starts the rows' names.
func coldStarts(w *World, t *Table, prefix string) error {
	for _, name := range w.Names() {
		fn := w.Service(name)
		var lat []time.Duration
		for range 20 {
			fn.ScaleToZero()
			began := time.Now()
			r, err := w.Internal(name, "GET", "/healthz")
			if err != nil {
				return err
			}
			if r.Status != http.StatusOK {
				return fmt.Errorf("%s: GET /healthz: %d %.200s", name, r.Status, r.Body)
			}
			lat = append(lat, time.Since(began))
		}
		slices.Sort(lat)
		time.Sleep(time.Second) // idle: whatever start-up allocated has settled
		t.Add(prefix+"coldstart."+name+".p50", Percentile(lat, 0.5), "ms")
		t.Add(prefix+"coldstart."+name+".p90", Percentile(lat, 0.9), "ms")
		t.Add(prefix+"rss."+name+".idle", RSS(fn.PID()), "MiB")
	}
	return nil
}

// eventPath posts n ping events to the Broker through the ingress (16 publishers) and follows
// the Broker's feed until the expiration function took each: events per second, and latency
// from the ingress storing an event to the function's answer.
func eventPath(w *World, t *Table, n int) error {
	if err := w.Service("expiration").Start(context.Background()); err != nil {
		return err
	}
	records, stop, err := w.Follow()
	if err != nil {
		return err
	}
	defer stop()
	start := time.Now()
	ids := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				if err := w.Publish(Ping(fmt.Sprintf("bench-%d", i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() {
		for i := range n {
			ids <- i
		}
		close(ids)
	}()
	accepted := map[string]time.Time{}
	var lat []time.Duration
	timeout := time.After(5 * time.Minute)
	for len(lat) < n {
		select {
		case r, ok := <-records:
			if !ok {
				return errors.New("the Broker's feed ended")
			}
			switch {
			case len(r.Event.ID) < 6 || r.Event.ID[:6] != "bench-":
			case r.Stage == broker.StageAccepted:
				accepted[r.Event.ID] = r.Time
			case r.Stage == broker.StageDelivered && r.Trigger == "expiration-ping":
				lat = append(lat, r.Time.Sub(accepted[r.Event.ID]))
			}
		case err := <-errs:
			return err
		case <-timeout:
			t.Note("events: only %d of %d pings seen delivered in 5 minutes (the feed drops records for a slow follower)", len(lat), n)
			n = len(lat)
		}
	}
	elapsed := time.Since(start)
	wg.Wait()
	slices.Sort(lat)
	t.Add("events.ping.count", float64(n), "events")
	t.Add("events.ping.rate", float64(n)/elapsed.Seconds(), "events/s")
	t.Add("events.ping.p50", Percentile(lat, 0.5), "ms")
	t.Add("events.ping.p99", Percentile(lat, 0.99), "ms")
	return nil
}

// Ping is a PingSource event with the id.
func Ping(id string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType("dev.knative.sources.ping")
	e.SetSource("/apis/v1/namespaces/tickit/pingsources/proof")
	_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{})
	return e
}

// Publish posts an event to the Broker's cluster address through the ingress.
func (w *World) Publish(e cloudevents.Event) error {
	req, err := http.NewRequest(http.MethodPost, w.URL()+"/"+system.Namespace+"/default", nil)
	if err != nil {
		return err
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		return err
	}
	req.Host = system.BrokerHost
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("publish %s: %d", e.ID(), resp.StatusCode)
	}
	return nil
}

func (b *bencher) ctx() context.Context { return context.Background() }

// machine says what the figures were measured on.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s/%s, %s", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// dataDir is a fresh data dir under the repository's .tickit/proof; what a run that was
// interrupted left there goes first (its processes died with it: Pdeathsig).
func dataDir(root, name string) (string, error) {
	dir := filepath.Join(root, ".tickit", "proof", name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}
