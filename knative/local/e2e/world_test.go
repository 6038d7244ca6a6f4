package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/manifest"
	"github.com/tickit/tickit/knative/local/proof"
	"github.com/tickit/tickit/knative/local/serving"
	"github.com/tickit/tickit/knative/local/system"
)

// root is the repository: the manifests, the functions, the stripe-mock fixtures.
var root, _ = system.Root()

// stripeURL is one stripe-mock for every system in this package: it is the slowest part to
// start, and it keeps no state.
var stripeURL string

// binDir holds the functions, built once for every system in this package.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	s, err := backing.StartStripeMock(root, filepath.Join(root, "functions/payments/testdata/stripe-fixtures.json"), io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	stripeURL = s.URL
	if binDir, err = os.MkdirTemp("", "tickit-e2e-bin"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	if err := buildFunctions(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// buildFunctions builds every function of the manifests into binDir, so that the systems
// started in parallel find them up to date instead of linking them each.
func buildFunctions() error {
	app, err := manifest.Load(filepath.Join(root, "knative"))
	if err != nil {
		return err
	}
	var pkgs []string
	for _, svc := range app.Services {
		if pkg := manifest.Function(svc); pkg != "" {
			pkgs = append(pkgs, pkg)
		}
	}
	_, err = serving.Build(context.Background(), root, binDir, pkgs)
	return err
}

// world is one running system (proof's, with its SendGrid stand-in) and what the test sees
// of it: the helpers below are proof's, failing the test instead of returning an error.
type world struct {
	*proof.World
	output *syncBuffer
}

// start runs the system from the manifests on a free port with its data under dir.
func start(t testing.TB, dir string, settings map[string]string) *world {
	t.Helper()
	settings["STRIPE_API_BASE"] = stripeURL
	w := &world{output: &syncBuffer{}}
	o := proof.Options{
		Root: root, Data: dir, BinDir: binDir, Tick: time.Second, Idle: time.Minute,
		Settings: settings, Output: w.output,
	}
	if idle := settings["IDLE"]; idle != "" {
		o.Idle, _ = time.ParseDuration(idle)
	}
	var err error
	if w.World, err = proof.Start(context.Background(), o); err != nil {
		t.Fatalf("start: %v\n%s", err, w.output.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("runtime and function output (last 200 lines):\n%s", w.output.Tail(200))
		}
	})
	t.Cleanup(w.Close)
	return w
}

// restart stops the system and starts it again on the same data dir.
func (w *world) restart(t *testing.T) {
	t.Helper()
	if err := w.Restart(context.Background()); err != nil {
		t.Fatalf("restart: %v\n%s", err, w.output.String())
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Tail(n int) string {
	lines := strings.Split(b.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// --- talking to the system through its ingress only ---

// response is an HTTP answer.
type response struct{ proof.Response }

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := r.Decode(v); err != nil {
		t.Fatal(err)
	}
}

// call sends a request to host through the ingress, with a bearer token when given.
func (w *world) call(t testing.TB, host, method, path string, body any, token string) response {
	t.Helper()
	r, err := w.Call(host, method, path, body, token)
	if err != nil {
		t.Fatal(err)
	}
	return response{r}
}

// api calls a function at its external address, as a user of the API would.
func (w *world) api(t *testing.T, function, method, path string, body any, token string) response {
	t.Helper()
	r, err := w.API(function, method, path, body, token)
	if err != nil {
		t.Fatal(err)
	}
	return response{r}
}

// signUp creates a user and returns the session token from the cookie.
func (w *world) signUp(t *testing.T, email string) string {
	t.Helper()
	token, err := w.SignUp(email)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func (w *world) sell(t *testing.T, token, title string, price float64) proof.Ticket {
	t.Helper()
	tk, err := w.Sell(token, title, price)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// listed reports whether the ticket is in the public list.
func (w *world) listed(t *testing.T, id string) bool {
	t.Helper()
	r := w.api(t, "tickets", "GET", "/api/tickets?limit=100", nil, "")
	if r.Status != http.StatusOK {
		t.Fatalf("list tickets: %d %s", r.Status, r.Body)
	}
	var list []proof.Ticket
	r.decode(t, &list)
	for _, tk := range list {
		if tk.ID == id {
			return true
		}
	}
	return false
}

// buy creates an order for the ticket, waiting until orders has the ticket (its replica
// comes with ticket.created through the Broker).
func (w *world) buy(t *testing.T, token, ticketID string) proof.Order {
	t.Helper()
	var r response
	eventually(t, "orders knows the ticket", func() bool {
		r = w.api(t, "orders", "POST", "/api/orders", map[string]string{"ticketId": ticketID}, token)
		return r.Status != http.StatusNotFound
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("buy %s: %d %s", ticketID, r.Status, r.Body)
	}
	var o proof.Order
	r.decode(t, &o)
	return o
}

func (w *world) order(t *testing.T, token, id string) proof.Order {
	t.Helper()
	r := w.api(t, "orders", "GET", "/api/orders/"+id, nil, token)
	if r.Status != http.StatusOK {
		t.Fatalf("get order %s: %d %s", id, r.Status, r.Body)
	}
	var o proof.Order
	r.decode(t, &o)
	return o
}

// eventually polls cond; the deadline only bounds a hung test, it asserts no timing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := proof.Eventually(45*time.Second, what, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits for wg at most five minutes; what names the wait in the failure.
func waitFor(t testing.TB, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("gave up after 5 minutes waiting for %s", what)
	}
}

// feed follows the Broker's records through the ingress (the Broker's cluster address, as
// make events does).
type feed struct {
	records <-chan broker.Record
}

func (w *world) follow(t testing.TB) *feed {
	t.Helper()
	records, stop, err := w.Follow()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &feed{records: records}
}

// delivered waits until the trigger took an event about subject.
func (f *feed) delivered(t *testing.T, trigger, subject string) {
	t.Helper()
	timeout := time.After(45 * time.Second)
	for {
		select {
		case r, ok := <-f.records:
			if !ok {
				t.Fatal("the Broker's feed ended")
			}
			if r.Stage == broker.StageDelivered && r.Trigger == trigger && r.Event.Subject == subject {
				return
			}
		case <-timeout:
			t.Fatalf("gave up waiting for trigger %s to take an event about %s", trigger, subject)
		}
	}
}
