package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// window is the EXPIRATION_WINDOW of the tests; the clock is the tests' own, so expiry is
// reached by moving the clock, never by waiting.
const window = 15 * time.Minute

// ids hands out fresh ObjectIDs, or a forced one while force is set (to make an insert fail).
type ids struct {
	mu    sync.Mutex
	force *primitive.ObjectID
}

func (g *ids) New() primitive.ObjectID {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.force != nil {
		return *g.force
	}
	return primitive.NewObjectID()
}

func (g *ids) Force(id *primitive.ObjectID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.force = id
}

// harness is the orders function served over real HTTP, on an in-memory database through the
// production store code, publishing to a recording Broker stand-in.
type harness struct {
	URL      string
	Sink     *testenv.Sink
	Sessions *session.Manager
	Clock    *testenv.Clock
	IDs      *ids
	Store    storage
	Fn       runtime.Function
}

func newHarness(t testing.TB, tweaks ...func(*service)) *harness {
	h := newUnserved(t, tweaks...)
	h.URL = testenv.Serve(t, h.Fn).URL
	return h
}

// newUnserved builds everything but the server; tweaks change the service before it serves.
func newUnserved(t testing.TB, tweaks ...func(*service)) *harness {
	db := testenv.Store(t, "orders", setup)
	h := &harness{
		Sink:     testenv.NewSink(t),
		Sessions: testenv.Sessions(),
		Clock:    testenv.NewClock(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)),
		IDs:      &ids{},
		Store:    newStorage(db),
	}
	svc := newService(Config{DB: db, Publisher: h.Sink.Publisher(t), Window: window, Now: h.Clock.Now, NewID: h.IDs.New})
	for _, tweak := range tweaks {
		tweak(svc)
	}
	h.Fn = svc.function(h.Sessions)
	return h
}

func (h *harness) user(t testing.TB, name string) testenv.User {
	return testenv.NewUser(t, h.Sessions, name+"@example.com")
}

// ticket lists a new ticket of seller through ticket.created and returns its id.
func (h *harness) ticket(t testing.TB, seller testenv.User) string {
	t.Helper()
	id := primitive.NewObjectID().Hex()
	if status, _ := h.send(t, events.TicketCreated{ID: id, Version: 0, Title: "Concert, row 7", Price: 1999, UserID: seller.ID}); status != http.StatusAccepted {
		t.Fatalf("ticket.created answered %d, want 202", status)
	}
	return id
}

// send delivers a fresh event with the payload, as the Broker does (binary mode).
func (h *harness) send(t testing.TB, p events.Payload) (int, *cloudevents.Event) {
	t.Helper()
	return testenv.Send(t, h.URL, events.New(p), false)
}

// buy places an order for ticketID as user.
func (h *harness) buy(t testing.TB, u testenv.User, ticketID string) testenv.Response {
	t.Helper()
	return testenv.Call(t, http.MethodPost, h.URL+"/api/orders", map[string]string{"ticketId": ticketID}, u.Token)
}

// mustBuy places an order that must succeed and returns it.
func (h *harness) mustBuy(t testing.TB, u testenv.User, ticketID string) orderJSON {
	t.Helper()
	r := h.buy(t, u, ticketID)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /api/orders: %d %s, want 201", r.Status, r.Body)
	}
	var o orderJSON
	r.JSON(t, &o)
	return o
}

// placed is the common start: a seller's ticket, reserved by a buyer's order.
func (h *harness) placed(t testing.TB) (buyer testenv.User, ticketID string, o orderJSON) {
	t.Helper()
	buyer = h.user(t, "buyer")
	ticketID = h.ticket(t, h.user(t, "seller"))
	return buyer, ticketID, h.mustBuy(t, buyer, ticketID)
}

// get reads an order through the API as its owner.
func (h *harness) get(t testing.TB, u testenv.User, id string) orderJSON {
	t.Helper()
	r := testenv.Call(t, http.MethodGet, h.URL+"/api/orders/"+id, nil, u.Token)
	if r.Status != http.StatusOK {
		t.Fatalf("GET order: %d %s, want 200", r.Status, r.Body)
	}
	var o orderJSON
	r.JSON(t, &o)
	return o
}

// pay delivers payment.created for order id, after marking the order confirmed by tickets as
// it is long before a buyer pays (tests of the confirmation itself use payUnconfirmed), and
// returns the answer.
func (h *harness) pay(t testing.TB, orderID, paymentID string) (int, *cloudevents.Event) {
	t.Helper()
	if id, ok := primitive.ObjectIDFromHex(orderID); ok == nil {
		if err := h.Store.confirm(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	return h.payUnconfirmed(t, orderID, paymentID)
}

// confirm delivers tickets' ticket.updated reserving ticketID for order orderID: the replica's
// next version, title and price unchanged.
func (h *harness) confirm(t testing.TB, ticketID, orderID string) {
	t.Helper()
	tk := h.replica(t, ticketID)
	status, _ := h.send(t, events.TicketUpdated{ID: ticketID, Version: tk.Version + 1, Title: tk.Title, Price: tk.Price,
		UserID: tk.UserID, OrderID: orderID})
	if status != http.StatusAccepted {
		t.Fatalf("ticket.updated naming order %s answered %d, want 202", orderID, status)
	}
}

// payUnconfirmed delivers payment.created for order id as it is and returns the answer.
func (h *harness) payUnconfirmed(t testing.TB, orderID, paymentID string) (int, *cloudevents.Event) {
	t.Helper()
	return h.send(t, events.PaymentCreated{ID: paymentID, OrderID: orderID, StripeID: "pi_" + paymentID, Amount: 1999, Currency: "usd"})
}

// published returns the distinct events (by id, in order of arrival) of type typ ("" for
// every type) about subject ("" for every subject). An event may reach the sink twice, when
// the background outbox flush overlaps the request's own delivery; consumers drop the repeat
// by id, so one id is one effect.
func (h *harness) published(typ, subject string) []cloudevents.Event {
	var out []cloudevents.Event
	seen := map[string]bool{}
	for _, e := range h.Sink.Events(typ) {
		if (subject == "" || e.Subject() == subject) && !seen[e.ID()] {
			seen[e.ID()] = true
			out = append(out, e)
		}
	}
	return out
}

// replica reads the ticket replica straight from the store.
func (h *harness) replica(t testing.TB, id string) Ticket {
	t.Helper()
	oid, _ := primitive.ObjectIDFromHex(id)
	tk, err := h.Store.ticket(context.Background(), oid)
	if err != nil {
		t.Fatalf("replica %s: %v", id, err)
	}
	return tk
}

// wantReleased checks that nobody holds the ticket and that a new buyer can reserve it.
func (h *harness) wantReleased(t testing.TB, ticketID string) {
	t.Helper()
	if got := h.replica(t, ticketID).ReservedBy; got != nil {
		t.Fatalf("the ticket is still reserved by %s", got.Hex())
	}
	h.mustBuy(t, h.user(t, "next"), ticketID)
}

// wantError checks an API error answer: status, and a message containing msg on field.
func wantError(t testing.TB, r testenv.Response, status int, field, msg string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d (%s), want %d", r.Status, r.Body, status)
	}
	e := r.Errors(t).Errors[0]
	if e.Field != field || !strings.Contains(e.Message, msg) {
		t.Fatalf("error %+v, want field %q and a message containing %q", e, field, msg)
	}
}

func newPaymentID() string { return primitive.NewObjectID().Hex() }
