package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/manifest"
	"github.com/tickit/tickit/knative/local/serving"
	"github.com/tickit/tickit/knative/local/system"
)

// root is the repository: the manifests, the functions, the stripe-mock fixtures.
var root, _ = filepath.Abs("../../..")

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

// world is one running system and what the test sees of it.
type world struct {
	*system.System
	dir      string
	settings map[string]string
	output   *syncBuffer
	sendgrid *sendgrid
}

// start runs the system from the manifests on a free port with its data under dir.
func start(t testing.TB, dir string, settings map[string]string) *world {
	t.Helper()
	w := &world{dir: dir, settings: settings, output: &syncBuffer{}}
	if _, ok := settings["SENDGRID_API_BASE"]; !ok {
		w.sendgrid = newSendGrid(t)
		settings["SENDGRID_API_KEY"], settings["SENDGRID_API_BASE"] = "SG.test", w.sendgrid.URL
	}
	settings["STRIPE_API_BASE"] = stripeURL
	w.boot(t)
	return w
}

func (w *world) boot(t testing.TB) {
	t.Helper()
	cfg := system.Config{
		Root: root, Data: w.dir, BinDir: binDir, Addr: "127.0.0.1:0", Tick: time.Second, Idle: time.Minute,
		Getenv: func(k string) string { return w.settings[k] },
		Out:    w.output, FunctionOutput: w.output,
	}
	if idle := w.settings["IDLE"]; idle != "" {
		cfg.Idle, _ = time.ParseDuration(idle)
	}
	sys, err := system.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, w.output.String())
	}
	w.System = sys
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("runtime and function output (last 200 lines):\n%s", w.output.Tail(200))
		}
	})
	t.Cleanup(sys.Close)
}

// restart stops the system and starts it again on the same data dir.
func (w *world) restart(t *testing.T) {
	t.Helper()
	w.System.Close()
	w.boot(t)
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

// sendgrid stands in for SendGrid's mail/send API and records each email.
type sendgrid struct {
	*httptest.Server
	mu     sync.Mutex
	emails []map[string]any
}

func newSendGrid(t testing.TB) *sendgrid {
	s := &sendgrid{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var mail map[string]any
		if r.URL.Path != "/v3/mail/send" || r.Header.Get("Authorization") != "Bearer SG.test" || json.NewDecoder(r.Body).Decode(&mail) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.emails = append(s.emails, mail)
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}

// To returns the emails sent to address.
func (s *sendgrid) To(address string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, m := range s.emails {
		if strings.Contains(fmt.Sprint(m["personalizations"]), address) {
			out = append(out, m)
		}
	}
	return out
}

// --- talking to the system through its ingress only ---

// response is an HTTP answer.
type response struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("answer %d is not the JSON expected: %v: %s", r.Status, err, r.Body)
	}
}

// call sends a request to host through the ingress, with a bearer token when given.
func (w *world) call(t testing.TB, host, method, path string, body any, token string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// api calls a function at its external address, as a user of the API would.
func (w *world) api(t *testing.T, function, method, path string, body any, token string) response {
	t.Helper()
	return w.call(t, function+".tickit."+system.ExternalDomain, method, path, body, token)
}

// signUp creates a user and returns the session token from the cookie.
func (w *world) signUp(t *testing.T, email string) string {
	t.Helper()
	r := w.api(t, "auth", "POST", "/api/users/signup", map[string]string{"email": email, "password": "correct horse battery"}, "")
	if r.Status != http.StatusCreated {
		t.Fatalf("sign up %s: %d %s", email, r.Status, r.Body)
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "session" {
			return c.Value
		}
	}
	t.Fatalf("sign up %s: no session cookie", email)
	return ""
}

type ticket struct {
	ID, Title, UserID, OrderID string
	Price                      float64
	Version                    int
}

type order struct {
	ID, Status, UserID string
	Version            int
	Ticket             struct{ ID string }
}

func (w *world) sell(t *testing.T, token, title string, price float64) ticket {
	t.Helper()
	r := w.api(t, "tickets", "POST", "/api/tickets", map[string]any{"title": title, "price": price}, token)
	if r.Status != http.StatusCreated {
		t.Fatalf("sell %q: %d %s", title, r.Status, r.Body)
	}
	var tk ticket
	r.decode(t, &tk)
	return tk
}

// listed reports whether the ticket is in the public list.
func (w *world) listed(t *testing.T, id string) bool {
	t.Helper()
	r := w.api(t, "tickets", "GET", "/api/tickets?limit=100", nil, "")
	if r.Status != http.StatusOK {
		t.Fatalf("list tickets: %d %s", r.Status, r.Body)
	}
	var list []ticket
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
func (w *world) buy(t *testing.T, token, ticketID string) order {
	t.Helper()
	var r response
	eventually(t, "orders knows the ticket", func() bool {
		r = w.api(t, "orders", "POST", "/api/orders", map[string]string{"ticketId": ticketID}, token)
		return r.Status != http.StatusNotFound
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("buy %s: %d %s", ticketID, r.Status, r.Body)
	}
	var o order
	r.decode(t, &o)
	return o
}

func (w *world) order(t *testing.T, token, id string) order {
	t.Helper()
	r := w.api(t, "orders", "GET", "/api/orders/"+id, nil, token)
	if r.Status != http.StatusOK {
		t.Fatalf("get order %s: %d %s", id, r.Status, r.Body)
	}
	var o order
	r.decode(t, &o)
	return o
}

// eventually polls cond; the deadline only bounds a hung test, it asserts no timing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// feed follows the Broker's records through the ingress (the Broker's cluster address, as
// make events does).
type feed struct {
	records chan broker.Record
}

func (w *world) follow(t testing.TB) *feed {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.URL()+"/"+system.Namespace+"/default/events", nil)
	req.Host = system.BrokerHost
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{records: make(chan broker.Record, 4096)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var r broker.Record
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				f.records <- r
			}
		}
		close(f.records)
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return f
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
