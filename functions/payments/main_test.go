// main_test.go: the test harness: the real function (newFunction) on a loopback server with an
// in-memory store, a Broker stand-in, and Stripe (stripe-mock or the stand-in).
package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stripe/stripe-go/v76"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
	"github.com/tickit/tickit/functions/internal/testenv"
)

type harness struct {
	URL      string
	store    Store
	sink     *testenv.Sink
	sessions *session.Manager
	fn       runtime.Function
	manual   atomic.Bool // true: the test answers payment.created itself (orders stays silent)
}

// testWait is how long a payment request waits for orders' decision in tests (outcomeWait in
// production): long enough for the harness's orders to answer on a loaded machine.
const testWait = 10 * time.Second

// testWaiting polls as production does, for at most testWait.
var testWaiting = waiting{outcome: testWait, pollFirst: productionWaiting.pollFirst, pollLongest: productionWaiting.pollLongest}

// newHarness serves the payments function against the Stripe at stripeBase. stripe-go's own
// retries are off so that each test sees exactly the exchanges it arranges. Unless the test
// sets manual, the harness plays orders: it answers each payment.created as orders decides it
// (order.completed while the replica's order is created and not expired, else payment.rejected
// with the reason), so a payment request gets its outcome.
func newHarness(t testing.TB, stripeBase string) *harness {
	return newHarnessWaiting(t, stripeBase, testWaiting)
}

// newHarnessWaiting is newHarness with payment requests waiting as w says.
func newHarnessWaiting(t testing.TB, stripeBase string, w waiting) *harness {
	db := testenv.Store(t, "payments", setupDB)
	sink := testenv.NewSink(t)
	sessions := testenv.Sessions()
	fn := newFunction(db, sessions, quietStripe(stripeBase), sink.Publisher(t), w)
	// The sweep runs when a test calls fn.Background, not behind the test's back after a request.
	served := fn
	served.Background = nil
	srv := testenv.Serve(t, served)
	h := &harness{URL: srv.URL, store: Store{db: db}, sink: sink, sessions: sessions, fn: fn}
	h.playOrders(t)
	return h
}

// playOrders answers payment.created events as orders would, until the test ends (its cleanup
// runs before the servers close).
func (h *harness) playOrders(t testing.TB) {
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		answered := map[string]bool{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if h.manual.Load() {
				continue
			}
			for _, e := range h.sink.Events(events.TypePaymentCreated) {
				if answered[e.ID()] {
					continue
				}
				answered[e.ID()] = true
				p, err := events.Decode[events.PaymentCreated](e)
				if err != nil {
					t.Errorf("payment.created: %v", err)
					continue
				}
				if err := h.deliver(h.decide(p)); err != nil {
					t.Errorf("answering payment.created: %v", err)
				}
			}
		}
	}()
}

// decide is orders' answer to payment p, from the replica (which follows orders).
func (h *harness) decide(p events.PaymentCreated) cloudevents.Event {
	id, _ := store.ParseID(p.OrderID)
	o, found, _ := h.store.order(context.Background(), id)
	switch {
	case found && o.Status == events.StatusCreated && time.Now().Before(o.ExpiresAt):
		return events.New(events.OrderCompleted{ID: p.OrderID, Version: o.Version + 1, UserID: o.UserID,
			UserEmail: "buyer@example.com", Ticket: events.OrderTicket{ID: primitive.NewObjectID().Hex(), Title: "t", Price: o.Price},
			PaymentID: p.ID})
	case found && o.Status == events.StatusCreated:
		return events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: p.ID, Reason: events.RejectedExpired})
	case found && o.Status == events.StatusComplete:
		return events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: p.ID, Reason: events.RejectedPaid})
	}
	return events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: p.ID, Reason: events.RejectedCancelled})
}

// deliver posts e to the function (binary mode) from any goroutine and checks it was taken.
func (h *harness) deliver(e cloudevents.Event) error {
	req, err := http.NewRequest(http.MethodPost, h.URL, nil)
	if err != nil {
		return err
	}
	if err := cehttp.WriteRequest(binding.WithForceBinary(context.Background()), binding.ToMessage(&e), req); err != nil {
		return err
	}
	resp, err := testenv.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s answered %d", e.Type(), resp.StatusCode)
	}
	return nil
}

// quietStripe is a Stripe client that does not log.
func quietStripe(base string) *Stripe {
	return NewStripe("sk_test_tickit", base, 0, &stripe.LeveledLogger{Level: stripe.LevelNull})
}

func (h *harness) user(t testing.TB) testenv.User {
	return testenv.NewUser(t, h.sessions, "buyer@example.com")
}

// send delivers an event to the function and returns the status.
func (h *harness) send(t testing.TB, e cloudevents.Event) int {
	t.Helper()
	status, _ := testenv.Send(t, h.URL, e, false)
	return status
}

// orderEvent is an order.created event whose price is the JSON literal given, as it crosses the wire.
func orderEvent(t testing.TB, id, userID, price string, expiresAt time.Time) cloudevents.Event {
	t.Helper()
	e := events.New(events.OrderCreated{ID: id, UserID: userID})
	data := fmt.Sprintf(`{"id":%q,"version":0,"status":"created","userId":%q,"userEmail":"buyer@example.com",`+
		`"expiresAt":%q,"ticket":{"id":%q,"title":"Concert, row 7","price":%s}}`,
		id, userID, expiresAt.UTC().Format(time.RFC3339Nano), primitive.NewObjectID().Hex(), price)
	if err := e.SetData(cloudevents.ApplicationJSON, []byte(data)); err != nil {
		t.Fatal(err)
	}
	return e
}

// order creates an order of user's in the replica (through order.created) and returns its id.
func (h *harness) order(t testing.TB, user testenv.User, price string, expiresIn time.Duration) string {
	t.Helper()
	id := primitive.NewObjectID().Hex()
	if status := h.send(t, orderEvent(t, id, user.ID, price, time.Now().Add(expiresIn))); status != http.StatusAccepted {
		t.Fatalf("order.created answered %d, want 202", status)
	}
	return id
}

func (h *harness) pay(t testing.TB, user testenv.User, orderID, token string) testenv.Response {
	t.Helper()
	return testenv.Call(t, http.MethodPost, h.URL+"/api/payments", map[string]string{"orderId": orderID, "token": token}, user.Token)
}

// paymentOf reads the order's payment document.
func (h *harness) paymentOf(t testing.TB, orderID string) Payment {
	t.Helper()
	p, found, err := h.store.paymentOf(testenv.Context(t), orderID)
	if err != nil || !found {
		t.Fatalf("payment of order %s: found %v, err %v", orderID, found, err)
	}
	return p
}

// waitStatus waits up to 10 s until the order's payment has the status.
func (h *harness) waitStatus(t testing.TB, orderID, status string) Payment {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, found, err := h.store.paymentOf(testenv.Context(t), orderID)
		if err != nil {
			t.Fatal(err)
		}
		if found && p.Status == status {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s: payment %+v (found %v) after 10 s, want status %s", orderID, p, found, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replica reads the order replica.
func (h *harness) replica(t testing.TB, orderID string) (Order, bool) {
	t.Helper()
	id, _ := store.ParseID(orderID)
	o, found, err := h.store.order(testenv.Context(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return o, found
}

// expectStatus fails unless the response has the status; for errors it returns the first message.
func expectStatus(t testing.TB, r testenv.Response, status int) string {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if status >= 400 {
		return r.Errors(t).Errors[0].Message
	}
	return ""
}

func paymentCreated(t testing.TB, e cloudevents.Event) events.PaymentCreated {
	t.Helper()
	p, err := events.Decode[events.PaymentCreated](e)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
