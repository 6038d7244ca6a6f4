package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/proof"
)

// TestTheSystemOnAMongoWireServer runs the system as make run does with MONGO_URL=mongodb://...:
// every function on the official driver, each with its own database on one server, the
// production data path. The server is MONGO_URL's when set, else a FerretDB of its own
// (knative/local/tools/ferretdb). Through the ingress only, it drives the purchase story, a
// cancel, an expiry, and a replay of every event of the story as a second delivery, and checks
// each function's data through its API. make wire runs it (TICKIT_WIRE=1); it needs no more
// than make test's tools.
func TestTheSystemOnAMongoWireServer(t *testing.T) {
	if os.Getenv("TICKIT_WIRE") == "" {
		t.Skip("make wire runs this (TICKIT_WIRE=1): the whole system on a Mongo-wire server")
	}
	url := os.Getenv("MONGO_URL")
	out := &syncBuffer{}
	if url == "" {
		f, err := backing.StartFerretDB(root, t.TempDir(), out)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		url = f.URL
	}
	rec := &recorder{byID: map[string]*delivered{}}
	w := &world{output: out}
	var err error
	w.World, err = proof.Start(context.Background(), proof.Options{
		Root: root, Data: t.TempDir(), BinDir: binDir, Tick: time.Second, Idle: time.Hour, Wrap: rec.wrap,
		Settings: map[string]string{"MONGO_URL": url, "STRIPE_API_BASE": stripeURL, "EXPIRATION_WINDOW": "20s"},
		Output:   out,
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("runtime and function output (last 200 lines):\n%s", out.Tail(200))
		}
	})
	t.Cleanup(w.Close)
	t.Logf("MONGO_URL=%s", url)

	// A server of the developer's may hold an earlier run's data: this run's users are its own.
	run := make([]byte, 3)
	_, _ = rand.Read(run)
	email := func(who string) string { return fmt.Sprintf("%s-%s@example.com", who, hex.EncodeToString(run)) }
	seller, buyer := w.signUp(t, email("seller")), w.signUp(t, email("buyer"))

	// The purchase story.
	tk := w.sell(t, seller, "Wire Concert", 42.5)
	o := w.buy(t, buyer, tk.ID)
	eventually(t, "the reserved ticket leaves the list", func() bool { return !w.listed(t, tk.ID) })
	var r response
	eventually(t, "the payment accepted", func() bool {
		r = w.api(t, "payments", "POST", "/api/payments", map[string]string{"orderId": o.ID, "token": "pm_card_visa"}, buyer)
		return r.Status != http.StatusNotFound
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("pay: %d %s", r.Status, r.Body)
	}
	eventually(t, "the order complete", func() bool { return w.order(t, buyer, o.ID).Status == "complete" })
	eventually(t, "the confirmation email", func() bool { return len(w.Mail.To(email("buyer"))) > 0 })
	eventually(t, "the ticket sold", func() bool { return w.ticket(t, tk.ID).Sold })
	checkSold := func(when string) {
		t.Helper()
		if got := w.ticket(t, tk.ID); !got.Sold || got.OrderID != o.ID {
			t.Fatalf("%s: tickets shows %+v, want sold to order %s", when, got, o.ID)
		}
		if got := w.order(t, buyer, o.ID); got.Status != "complete" || got.Ticket.ID != tk.ID {
			t.Fatalf("%s: orders shows %+v, want complete for ticket %s", when, got, tk.ID)
		}
		if ps := w.payments(t, buyer); len(ps) != 1 || ps[0].OrderID != o.ID {
			t.Fatalf("%s: payments lists %+v, want one payment of order %s", when, ps, o.ID)
		}
		if n := len(w.Mail.To(email("buyer"))); n != 1 {
			t.Fatalf("%s: %d confirmation emails, want 1", when, n)
		}
		if r := w.api(t, "auth", "GET", "/api/users/currentuser", nil, buyer); r.Status != http.StatusOK || !strings.Contains(string(r.Body), email("buyer")) {
			t.Fatalf("%s: auth's current user: %d %s", when, r.Status, r.Body)
		}
		if w.listed(t, tk.ID) {
			t.Fatalf("%s: a sold ticket is listed", when)
		}
	}
	checkSold("after the story")

	// Every event of the story delivered again, as a second delivery of the same fact (a new
	// id, as a producer retrying after a lost answer sends it), through the Broker's ingress.
	story := rec.events()
	if len(story) == 0 {
		t.Fatal("no event of the story was seen reaching a function")
	}
	for _, e := range story {
		again := e.Clone()
		again.SetID(e.ID() + "-replay")
		if err := w.Publish(again); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every replayed event answered by each function it reached the first time", func() bool {
		return rec.replayed(story)
	})
	t.Logf("replayed %d events of the story: %s", len(story), rec.types(story))
	checkSold("after the replay")

	// A cancel: the ticket is listed again.
	tk2 := w.sell(t, seller, "Wire Theatre", 30)
	o2 := w.buy(t, buyer, tk2.ID)
	eventually(t, "the ticket reserved", func() bool { return !w.listed(t, tk2.ID) })
	if r := w.api(t, "orders", "DELETE", "/api/orders/"+o2.ID, nil, buyer); r.Status != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	eventually(t, "the cancelled order's ticket listed again", func() bool { return w.listed(t, tk2.ID) })
	if got := w.order(t, buyer, o2.ID).Status; got != "cancelled" {
		t.Fatalf("order status %q after the cancel, want cancelled", got)
	}

	// An expiry: an unpaid order is cancelled when EXPIRATION_WINDOW has passed.
	tk3 := w.sell(t, seller, "Wire Opera", 60)
	o3 := w.buy(t, buyer, tk3.ID)
	eventually(t, "the unpaid order cancelled by expiry", func() bool { return w.order(t, buyer, o3.ID).Status == "cancelled" })
	eventually(t, "the expired order's ticket listed again", func() bool { return w.listed(t, tk3.ID) })
	if got := w.ticket(t, tk3.ID); got.OrderID != "" || got.Sold {
		t.Fatalf("the expired order's ticket: %+v, want free", got)
	}
	if ps := w.payments(t, buyer); len(ps) != 1 {
		t.Fatalf("payments lists %d payments, want only the story's", len(ps))
	}
}

// ticket reads a ticket through the public API.
func (w *world) ticket(t *testing.T, id string) proof.Ticket {
	t.Helper()
	r := w.api(t, "tickets", "GET", "/api/tickets/"+id, nil, "")
	if r.Status != http.StatusOK {
		t.Fatalf("get ticket %s: %d %s", id, r.Status, r.Body)
	}
	var tk proof.Ticket
	r.decode(t, &tk)
	return tk
}

func (w *world) payments(t *testing.T, token string) []proof.Payment {
	t.Helper()
	r := w.api(t, "payments", "GET", "/api/payments", nil, token)
	if r.Status != http.StatusOK {
		t.Fatalf("list payments: %d %s", r.Status, r.Body)
	}
	var ps []proof.Payment
	r.decode(t, &ps)
	return ps
}

// recorder sees every CloudEvent the Broker delivers to a function and the function's answer.
type recorder struct {
	mu    sync.Mutex
	order []string
	byID  map[string]*delivered
}

type delivered struct {
	event  cloudevents.Event
	status map[string]int // by function: the last answer
}

func (rc *recorder) wrap(function string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Ce-Id") == "" {
			h.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		copied := r.Clone(context.Background())
		copied.Body = io.NopCloser(bytes.NewReader(body))
		e, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpRequest(copied))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		if err != nil || e.Type() == "dev.knative.sources.ping" {
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		d := rc.byID[e.ID()]
		if d == nil {
			d = &delivered{event: *e, status: map[string]int{}}
			rc.byID[e.ID()] = d
			rc.order = append(rc.order, e.ID())
		}
		d.status[function] = sw.status
	})
}

// events returns the first delivery of each event seen so far, in the order they came.
func (rc *recorder) events() []cloudevents.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []cloudevents.Event
	for _, id := range rc.order {
		out = append(out, rc.byID[id].event)
	}
	return out
}

// replayed reports whether each "-replay" copy of story reached every function the original
// reached and was answered there without a 5xx (the Broker retries those).
func (rc *recorder) replayed(story []cloudevents.Event) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, e := range story {
		again := rc.byID[e.ID()+"-replay"]
		if again == nil {
			return false
		}
		for fn := range rc.byID[e.ID()].status {
			if s, ok := again.status[fn]; !ok || s >= 500 {
				return false
			}
		}
	}
	return true
}

// types names the events' types with the functions each reached and their answers.
func (rc *recorder) types(story []cloudevents.Event) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var parts []string
	for _, e := range story {
		parts = append(parts, fmt.Sprintf("%s %v then %v", strings.TrimPrefix(e.Type(), "dev.tickit."),
			rc.byID[e.ID()].status, rc.byID[e.ID()+"-replay"].status))
	}
	return strings.Join(parts, "; ")
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
