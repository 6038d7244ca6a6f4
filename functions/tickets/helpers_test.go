package main

// helpers_test.go: the tickets function on a loopback server with an in-memory database and
// a Broker stand-in, plus helpers to call it.

import (
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
	"github.com/tickit/tickit/functions/internal/testenv"
)

type env struct {
	t        testing.TB
	url      string
	fn       runtime.Function
	db       *store.DB
	sink     *testenv.Sink
	sessions *session.Manager
	clock    *testenv.Clock
	seller   testenv.User
}

func newEnv(t testing.TB) *env {
	e := &env{t: t, db: testenv.Store(t, name, setup), sink: testenv.NewSink(t), sessions: testenv.Sessions(),
		clock: testenv.NewClock(time.Now().UTC().Truncate(time.Millisecond))}
	e.fn = New(Config{DB: e.db, Publisher: e.sink.Publisher(t), Sessions: e.sessions, Now: e.clock.Now})
	e.url = testenv.Serve(t, e.fn).URL
	e.seller = e.user("seller@example.com")
	return e
}

func (e *env) user(email string) testenv.User { return testenv.NewUser(e.t, e.sessions, email) }

// create sells a ticket as the seller through the API.
func (e *env) create(title string, price float64) ticketJSON {
	e.t.Helper()
	r := testenv.Call(e.t, http.MethodPost, e.url+"/api/tickets", map[string]any{"title": title, "price": price}, e.seller.Token)
	if r.Status != http.StatusCreated {
		e.t.Fatalf("create ticket: status %d, want 201: %s", r.Status, r.Body)
	}
	var tk ticketJSON
	r.JSON(e.t, &tk)
	return tk
}

// reserved creates a ticket and reserves it for a new order that is live for 15 minutes.
func (e *env) reserved() (ticketJSON, string) {
	e.t.Helper()
	tk, order := e.create("Concert", 10), newID()
	e.deliver(orderCreated(order, tk.ID, e.clock.Now().Add(15*time.Minute)))
	return tk, order
}

// get reads a ticket through the API.
func (e *env) get(id string) ticketJSON {
	e.t.Helper()
	r := testenv.Call(e.t, http.MethodGet, e.url+"/api/tickets/"+id, nil, "")
	if r.Status != http.StatusOK {
		e.t.Fatalf("get ticket %s: status %d, want 200: %s", id, r.Status, r.Body)
	}
	var tk ticketJSON
	r.JSON(e.t, &tk)
	return tk
}

// list reads the listing through the API.
func (e *env) list(query string) []ticketJSON {
	e.t.Helper()
	r := testenv.Call(e.t, http.MethodGet, e.url+"/api/tickets"+query, nil, "")
	if r.Status != http.StatusOK {
		e.t.Fatalf("list %q: status %d, want 200: %s", query, r.Status, r.Body)
	}
	var list []ticketJSON
	r.JSON(e.t, &list)
	return list
}

// send delivers an event as the Broker does and returns the status.
func (e *env) send(ev cloudevents.Event) int {
	e.t.Helper()
	status, _ := testenv.Send(e.t, e.url+"/", ev, false)
	return status
}

// deliver sends an event until it is accepted, as the Broker's retries would.
func (e *env) deliver(ev cloudevents.Event) {
	e.t.Helper()
	for range 100 {
		switch status := e.send(ev); {
		case status < 300:
			return
		case status != http.StatusServiceUnavailable:
			e.t.Fatalf("deliver %s: status %d", ev.Type(), status)
		}
	}
	e.t.Fatalf("deliver %s: still 503 after 100 tries", ev.Type())
}

// updates returns the ticket.updated events published for a ticket, by version; a version
// published twice with different ids fails the test.
func (e *env) updates(ticketID string) []events.TicketUpdated {
	e.t.Helper()
	byVersion := map[int64]events.TicketUpdated{}
	ids := map[int64]string{}
	for _, ev := range e.sink.Events(events.TypeTicketUpdated) {
		p, err := events.Decode[events.TicketUpdated](ev)
		if err != nil {
			e.t.Fatalf("published ticket.updated is malformed: %v", err)
		}
		if p.ID != ticketID {
			continue
		}
		if id, seen := ids[p.Version]; seen && id != ev.ID() {
			e.t.Fatalf("ticket %s: two different ticket.updated events for version %d", ticketID, p.Version)
		}
		ids[p.Version], byVersion[p.Version] = ev.ID(), p
	}
	out := make([]events.TicketUpdated, 0, len(byVersion))
	for _, p := range byVersion {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// checkUpdates checks that a ticket at version v published ticket.updated 1..v, gap-free, the
// last one matching the ticket (what orders' replica needs to follow it).
func (e *env) checkUpdates(tk ticketJSON) {
	e.t.Helper()
	ups := e.updates(tk.ID)
	if int64(len(ups)) != tk.Version {
		e.t.Fatalf("ticket %s at version %d published %d ticket.updated events: %+v", tk.ID, tk.Version, len(ups), ups)
	}
	for i, u := range ups {
		if u.Version != int64(i+1) {
			e.t.Fatalf("ticket %s: ticket.updated versions %+v are not 1..%d", tk.ID, ups, tk.Version)
		}
	}
	if len(ups) > 0 {
		last := ups[len(ups)-1]
		if last.OrderID != tk.OrderID || last.Title != tk.Title || last.Price != tk.Price || last.UserID != tk.UserID {
			e.t.Fatalf("last ticket.updated %+v does not match the ticket %+v", last, tk)
		}
	}
}

func newID() string { return primitive.NewObjectID().Hex() }

// orderCreatedAt is the order.created of an order placed at tk's present terms.
func orderCreatedAt(orderID string, tk ticketJSON, expiresAt time.Time) cloudevents.Event {
	return events.New(events.OrderCreated{ID: orderID, Status: events.StatusCreated, UserID: newID(), UserEmail: "b@example.com",
		ExpiresAt: expiresAt, Ticket: events.OrderTicket{ID: tk.ID, Title: tk.Title, Price: tk.Price}})
}

// orderCreated is the order.created of an order placed at the terms of the tickets the tests
// list ("Concert" at 10): tickets reserves only at the ticket's present title and price.
func orderCreated(orderID, ticketID string, expiresAt time.Time) cloudevents.Event {
	return events.New(events.OrderCreated{ID: orderID, Status: events.StatusCreated, UserID: newID(), UserEmail: "buyer@example.com",
		ExpiresAt: expiresAt, Ticket: events.OrderTicket{ID: ticketID, Title: "Concert", Price: 1000}})
}

func orderCancelled(orderID, ticketID string) cloudevents.Event {
	return events.New(events.OrderCancelled{ID: orderID, Version: 1, Ticket: events.OrderTicket{ID: ticketID}})
}

func orderCompleted(orderID, ticketID string) cloudevents.Event {
	return events.New(events.OrderCompleted{ID: orderID, Version: 1, UserID: newID(), UserEmail: "buyer@example.com",
		Ticket: events.OrderTicket{ID: ticketID, Title: "a ticket", Price: 1000}, PaymentID: newID()})
}

func describe(tk ticketJSON) string {
	return fmt.Sprintf("{orderId %q sold %v version %d}", tk.OrderID, tk.Sold, tk.Version)
}
