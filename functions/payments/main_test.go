// main_test.go: the test harness: the real function (newFunction) on a loopback server with an
// in-memory store, a Broker stand-in, and Stripe (stripe-mock or the stand-in).
package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
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
}

// newHarness serves the payments function against the Stripe at stripeBase. stripe-go's own
// retries are off so that each test sees exactly the exchanges it arranges.
func newHarness(t testing.TB, stripeBase string) *harness {
	db := testenv.Store(t, "payments", setupDB)
	sink := testenv.NewSink(t)
	sessions := testenv.Sessions()
	fn := newFunction(db, sessions, quietStripe(stripeBase), sink.Publisher(t))
	// The sweep runs when a test calls fn.Background, not behind the test's back after a request.
	served := fn
	served.Background = nil
	srv := testenv.Serve(t, served)
	return &harness{URL: srv.URL, store: Store{db: db}, sink: sink, sessions: sessions, fn: fn}
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
