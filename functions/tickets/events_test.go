package main

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestOrderCreatedReservesTheTicketOnce(t *testing.T) {
	testenv.OnEachStore(t, testOrderCreatedReservesTheTicketOnce)
}

func testOrderCreatedReservesTheTicketOnce(t *testing.T) {
	// Arrange
	e := newEnv(t)
	tk := e.create("Concert", 10)
	order := newID()
	ev := orderCreated(order, tk.ID, e.clock.Now().Add(15*time.Minute))

	// Act: the Broker delivers it twice.
	first, second := e.send(ev), e.send(ev)

	// Assert
	if first >= 300 || second >= 300 {
		t.Fatalf("statuses %d, %d, want 2xx both times", first, second)
	}
	got := e.get(tk.ID)
	if got.OrderID != order || got.Version != 1 {
		t.Fatalf("ticket %s, want reserved by %s at version 1", describe(got), order)
	}
	e.checkUpdates(got)
	want := events.TicketUpdated{ID: tk.ID, Version: 1, Title: "Concert", Price: 1000, UserID: e.seller.ID, OrderID: order}
	if ups := e.updates(tk.ID); ups[0] != want {
		t.Fatalf("ticket.updated %+v, want %+v", ups[0], want)
	}
}

func TestOrderCancelledReleasesTheTicketOnce(t *testing.T) {
	testenv.OnEachStore(t, testOrderCancelledReleasesTheTicketOnce)
}

func testOrderCancelledReleasesTheTicketOnce(t *testing.T) {
	e := newEnv(t)
	tk, order := e.reserved()
	cancel := orderCancelled(order, tk.ID)

	e.deliver(cancel)
	e.deliver(cancel)

	got := e.get(tk.ID)
	if got.OrderID != "" || got.Version != 2 {
		t.Fatalf("ticket %s, want free at version 2", describe(got))
	}
	e.checkUpdates(got)
	if list := e.list(""); len(list) != 1 || list[0].ID != tk.ID {
		t.Fatalf("the released ticket is not listed again: %+v", list)
	}
	// A repeated order.created of the cancelled order must not reserve again.
	e.deliver(orderCreated(order, tk.ID, e.clock.Now().Add(15*time.Minute)))
	if got := e.get(tk.ID); got.OrderID != "" || got.Version != 2 {
		t.Fatalf("a late order.created of a cancelled order changed the ticket: %s", describe(got))
	}
}

func TestStaleCancelNeverFreesAnotherOrdersReservation(t *testing.T) {
	// Arrange: A holds the ticket; B is an older order of it that was cancelled.
	e := newEnv(t)
	tk := e.create("Concert", 10)
	a, b := newID(), newID()
	e.deliver(orderCreated(a, tk.ID, e.clock.Now().Add(15*time.Minute)))

	// Act
	e.deliver(orderCancelled(b, tk.ID))

	// Assert: still A's, no new version, no event.
	got := e.get(tk.ID)
	if got.OrderID != a || got.Version != 1 {
		t.Fatalf("after a stale cancel the ticket is %s, want still reserved by %s at version 1", describe(got), a)
	}
	e.checkUpdates(got)

	// B's order.created arriving late, after A is gone, must not reserve either.
	e.deliver(orderCancelled(a, tk.ID))
	e.deliver(orderCreated(b, tk.ID, e.clock.Now().Add(15*time.Minute)))
	if got := e.get(tk.ID); got.OrderID != "" || got.Version != 2 {
		t.Fatalf("ticket %s, want free at version 2", describe(got))
	}
}

func TestOrderCompletedSellsTheTicketForGood(t *testing.T) {
	testenv.OnEachStore(t, testOrderCompletedSellsTheTicketForGood)
}

func testOrderCompletedSellsTheTicketForGood(t *testing.T) {
	e := newEnv(t)
	tk, order := e.reserved()

	done := orderCompleted(order, tk.ID)
	e.deliver(done)
	e.deliver(done)

	got := e.get(tk.ID)
	if got.OrderID != order || !got.Sold || got.Version != 2 {
		t.Fatalf("ticket %s, want sold to %s at version 2", describe(got), order)
	}
	e.checkUpdates(got)
	// Nothing moves it any more: a stray cancel, a new order, an expired clock.
	e.clock.Advance(time.Hour)
	e.deliver(orderCancelled(order, tk.ID))
	e.deliver(orderCreated(newID(), tk.ID, e.clock.Now().Add(15*time.Minute)))
	if after := e.get(tk.ID); after != got {
		t.Fatalf("a sold ticket changed: %s, was %s", describe(after), describe(got))
	}
	if n := len(e.list("")); n != 0 {
		t.Fatalf("the sold ticket is listed")
	}
}

func TestOrderCompletedBeforeOrderCreatedStillSells(t *testing.T) {
	e := newEnv(t)
	tk := e.create("Concert", 10)
	order := newID()

	e.deliver(orderCompleted(order, tk.ID))
	e.deliver(orderCreated(order, tk.ID, e.clock.Now().Add(15*time.Minute)))

	if got := e.get(tk.ID); got.OrderID != order || !got.Sold || got.Version != 1 {
		t.Fatalf("ticket %s, want sold to %s at version 1", describe(got), order)
	}
}

func TestOrderCreatedOfAnExpiredOrderIsIgnored(t *testing.T) {
	e := newEnv(t)
	tk := e.create("Concert", 10)

	e.deliver(orderCreated(newID(), tk.ID, e.clock.Now()))

	if got := e.get(tk.ID); got.OrderID != "" || got.Version != 0 {
		t.Fatalf("an expired order reserved the ticket: %s", describe(got))
	}
}

func TestOrderCreatedWaitsWhileAnotherOrderIsLive(t *testing.T) {
	e := newEnv(t)
	tk := e.create("Concert", 10)
	a, b := newID(), newID()
	e.deliver(orderCreated(a, tk.ID, e.clock.Now().Add(15*time.Minute)))
	bCreated := orderCreated(b, tk.ID, e.clock.Now().Add(20*time.Minute))

	if status := e.send(bCreated); status != http.StatusServiceUnavailable {
		t.Fatalf("order.created while A is live: status %d, want 503 (retry until A's cancel arrives)", status)
	}
	e.deliver(orderCancelled(a, tk.ID))
	e.deliver(bCreated)

	if got := e.get(tk.ID); got.OrderID != b || got.Version != 3 {
		t.Fatalf("ticket %s, want reserved by %s at version 3", describe(got), b)
	}
}

func TestOrderCreatedTakesOverFromAnExpiredOrder(t *testing.T) {
	// Arrange: A held the ticket until a minute from now; B comes after that.
	e := newEnv(t)
	tk := e.create("Concert", 10)
	a, b := newID(), newID()
	e.deliver(orderCreated(a, tk.ID, e.clock.Now().Add(time.Minute)))
	e.clock.Advance(time.Minute)

	// Act: B's order.created before A's cancel (orders took over lazily).
	e.deliver(orderCreated(b, tk.ID, e.clock.Now().Add(15*time.Minute)))
	e.deliver(orderCancelled(a, tk.ID))

	// Assert
	got := e.get(tk.ID)
	if got.OrderID != b || got.Version != 2 {
		t.Fatalf("ticket %s, want reserved by %s at version 2", describe(got), b)
	}
	e.checkUpdates(got)
}

func TestEventsForAnUnknownTicketAreRetried(t *testing.T) {
	e := newEnv(t)
	ticket, order := newID(), newID()
	for _, ev := range []cloudevents.Event{
		orderCreated(order, ticket, e.clock.Now().Add(time.Minute)),
		orderCancelled(order, ticket),
		orderCompleted(order, ticket),
	} {
		if status := e.send(ev); status != http.StatusServiceUnavailable {
			t.Errorf("%s for an unknown ticket: status %d, want 503", ev.Type(), status)
		}
	}
}

func TestMalformedOrderEventsAreRejected(t *testing.T) {
	e := newEnv(t)
	tk := e.create("Concert", 10)
	bad := orderCreated(newID(), tk.ID, e.clock.Now().Add(time.Minute))
	if err := bad.SetData(cloudevents.ApplicationJSON, map[string]any{"id": "nope", "ticket": map[string]any{"id": tk.ID}}); err != nil {
		t.Fatal(err)
	}
	if status := e.send(bad); status != http.StatusInternalServerError {
		t.Fatalf("malformed order.created: status %d, want 500 (never taken: retried, then dead-lettered)", status)
	}
	if got := e.get(tk.ID); got.Version != 0 {
		t.Fatalf("a malformed event changed the ticket: %s", describe(got))
	}
}

// history is what orders did with one ticket: the events it published and how it ended.
type history struct {
	events   []cloudevents.Event
	holder   string // the live or paid order at the end; "" when none
	sold     bool
	describe []string
}

// newHistory draws a history orders could produce: orders one after another, each handed the
// ticket only after the one before was cancelled or had expired (and then was cancelled by the
// takeover). The last order may also stay live, or be paid. Delivery happens at time now.
func newHistory(rng *rand.Rand, ticketID string, now time.Time) history {
	var h history
	n := 1 + rng.IntN(5)
	for i := range n {
		id := newID()
		live := now.Add(time.Duration(1+rng.IntN(30)) * time.Minute)
		expired := now.Add(-time.Duration(rng.IntN(30)) * time.Minute)
		fate := rng.IntN(2)
		if i == n-1 {
			fate = rng.IntN(5)
		}
		switch fate {
		case 0: // cancelled by its buyer while live
			h.events = append(h.events, orderCreated(id, ticketID, live), orderCancelled(id, ticketID))
			h.describe = append(h.describe, "cancelled")
		case 1: // expired, then cancelled (by the tick or by the next order's takeover)
			h.events = append(h.events, orderCreated(id, ticketID, expired), orderCancelled(id, ticketID))
			h.describe = append(h.describe, "expired")
		case 2: // still live
			h.events = append(h.events, orderCreated(id, ticketID, live))
			h.holder = id
			h.describe = append(h.describe, "live")
		default: // paid before it expired (the hold may have run out since)
			exp := live
			if fate == 4 {
				exp = expired
			}
			h.events = append(h.events, orderCreated(id, ticketID, exp), orderCompleted(id, ticketID))
			h.holder, h.sold = id, true
			h.describe = append(h.describe, "paid")
		}
	}
	return h
}

// deliveries repeats each event one to three times, shuffled.
func (h history) deliveries(rng *rand.Rand) []cloudevents.Event {
	var out []cloudevents.Event
	for _, ev := range h.events {
		for range 1 + rng.IntN(3) {
			out = append(out, ev)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// checkHistories draws n histories, each on a fresh ticket, hands their deliveries to deliver
// and checks the invariant: the ticket ends with the live or paid order (sold when paid) or
// free, and its published ticket.updated versions are 1..version, gap-free.
// The handlers are called directly (the HTTP layer is covered by the other tests) to keep
// thousands of deliveries fast.
func checkHistories(t *testing.T, n, stream uint64, deliver func(seed uint64, handle func(cloudevents.Event) error, deliveries []cloudevents.Event)) {
	e := newEnv(t)
	ctx := testenv.Context(t)
	handle := func(ev cloudevents.Event) error {
		_, err := e.fn.Events[ev.Type()](ctx, ev)
		return err
	}
	for seed := range n {
		rng := rand.New(rand.NewPCG(seed, stream))
		tk := e.create("Concert", 10)
		h := newHistory(rng, tk.ID, e.clock.Now())

		deliver(seed, handle, h.deliveries(rng))

		got := e.get(tk.ID)
		if got.OrderID != h.holder || got.Sold != h.sold {
			t.Fatalf("seed %d history %v: ticket %s, want orderId %q sold %v", seed, h.describe, describe(got), h.holder, h.sold)
		}
		e.checkUpdates(got)
	}
}

func TestAnyDeliveryOrderLeavesTheTicketWithItsLiveOrder(t *testing.T) {
	checkHistories(t, 200, 42, func(seed uint64, handle func(cloudevents.Event) error, queue []cloudevents.Event) {
		// Deliver like the Broker: a 503 goes to the back of the queue and comes again.
		for steps := 0; len(queue) > 0; steps++ {
			if steps > 1000 {
				t.Fatalf("seed %d: deliveries never settle; %d left", seed, len(queue))
			}
			ev := queue[0]
			queue = queue[1:]
			if err := handle(ev); err != nil {
				if events.IsMalformed(err) {
					t.Fatalf("seed %d: %v", seed, err)
				}
				queue = append(queue, ev)
			}
		}
	})
}

func TestConcurrentDeliveriesLeaveTheTicketWithItsLiveOrder(t *testing.T) {
	testenv.OnEachAtomicStore(t, testConcurrentDeliveriesLeaveTheTicketWithItsLiveOrder)
}

func testConcurrentDeliveriesLeaveTheTicketWithItsLiveOrder(t *testing.T) {
	// The Broker may deliver one ticket's events in parallel: every delivery goes out on its
	// own goroutine, and a 503 is sent again until it is accepted.
	checkHistories(t, 100, 7, func(seed uint64, handle func(cloudevents.Event) error, deliveries []cloudevents.Event) {
		var wg sync.WaitGroup
		for _, ev := range deliveries {
			wg.Go(func() {
				for range 1000 {
					err := handle(ev)
					if err == nil {
						return
					}
					if events.IsMalformed(err) {
						t.Errorf("seed %d: %v", seed, err)
						return
					}
					time.Sleep(time.Millisecond) // the Broker's backoff, shortened
				}
				t.Errorf("seed %d: %s never accepted", seed, ev.Type())
			})
		}
		testenv.Wait(t, &wg, 5*time.Minute, "the shuffled deliveries")
	})
}

// TestAnEditAndAReservationRacingHaveOneWinner: the seller's PUTs and an order.created placed at
// the ticket's old terms land at once. Whichever reaches the ticket first wins and nobody is
// told "done" for a change that is then overridden: the reservation first -> every PUT is 400
// "Cannot edit a reserved ticket" and the ticket is reserved at the terms the buyer saw; an
// edit first -> the reservation is refused (reservation.refused, so orders cancels the order)
// and the ticket stays free at the edited terms. Before tickets compared the order's terms,
// every round that accepted an edit also reserved: the seller told 99, the buyer charged 10.
func TestAnEditAndAReservationRacingHaveOneWinner(t *testing.T) {
	testenv.OnEachAtomicStore(t, testAnEditAndAReservationRacingHaveOneWinner)
}

func testAnEditAndAReservationRacingHaveOneWinner(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ rounds, editors int }{{40, 1}, {10, 8}} {
		for round := range c.rounds {
			// Arrange: a ticket at 10, an order placed at 10.
			tk := e.create("Concert", 10)
			order := newID()
			reserve := orderCreated(order, tk.ID, e.clock.Now().Add(15*time.Minute))
			answers := make([]testenv.Response, c.editors)

			// Act: the seller edits from many places while the order.created lands.
			var wg sync.WaitGroup
			for i := range c.editors {
				wg.Go(func() {
					body := map[string]any{"title": "Race", "price": 99 + i}
					answers[i] = testenv.Call(t, http.MethodPut, e.url+"/api/tickets/"+tk.ID, body, e.seller.Token)
				})
			}
			wg.Go(func() { e.deliver(reserve) })
			testenv.Wait(t, &wg, 5*time.Minute, "the edits and the reservation")

			// Assert
			edits := 0
			for _, r := range answers {
				switch {
				case r.Status == http.StatusOK:
					edits++
				case r.Status == http.StatusBadRequest && r.Errors(t).Errors[0].Message == ErrReserved.Errors[0].Message:
				case r.Status == http.StatusConflict: // lost maxTries races in a row: the caller may try again
				default:
					t.Fatalf("%d editors, round %d: PUT answered %d %s", c.editors, round, r.Status, r.Body)
				}
			}
			got := e.get(tk.ID)
			refusals := 0
			for _, ev := range e.sink.Events(events.TypeReservationRefused) {
				if p, err := events.Decode[events.ReservationRefused](ev); err == nil && p.OrderID == order {
					refusals++
				}
			}
			switch {
			case got.OrderID == order:
				if edits != 0 || got.Price != 1000 || got.Title != "Concert" || got.Version != 1 || refusals != 0 {
					t.Fatalf("%d editors, round %d: reserved (%s) but %d edits were answered 200 and %d refusals sent",
						c.editors, round, describe(got), edits, refusals)
				}
			default:
				if edits == 0 || got.OrderID != "" || got.Title != "Race" || got.Version != int64(edits) || refusals != 1 {
					t.Fatalf("%d editors, round %d: ticket %s after %d accepted edits and %d refusals of the order, "+
						"want it free at the edit and the order refused once", c.editors, round, describe(got), edits, refusals)
				}
			}
			e.checkUpdates(got)
		}
	}
}

func TestTheOutboxPublishesOnceTheBrokerIsBack(t *testing.T) {
	testenv.OnEachStore(t, testTheOutboxPublishesOnceTheBrokerIsBack)
}

func testTheOutboxPublishesOnceTheBrokerIsBack(t *testing.T) {
	// Arrange: the Broker refuses everything.
	e := newEnv(t)
	e.sink.Fail(http.StatusServiceUnavailable, -1)

	// Act: a ticket is sold and reserved while it is down.
	r := testenv.Call(t, http.MethodPost, e.url+"/api/tickets", map[string]any{"title": "Concert", "price": 10}, e.seller.Token)
	var tk ticketJSON
	r.JSON(t, &tk)
	order := newID()
	status := e.send(orderCreated(order, tk.ID, e.clock.Now().Add(15*time.Minute)))

	// Assert: both succeed, nothing went out yet; after recovery a flush publishes both.
	if r.Status != http.StatusCreated || status >= 300 {
		t.Fatalf("with the Broker down: POST %d, order.created %d; want 201 and 2xx", r.Status, status)
	}
	if n := len(e.sink.Events("")); n != 0 {
		t.Fatalf("a failing sink accepted %d events", n)
	}
	e.sink.Recover()
	e.fn.Background(testenv.Context(t))
	created := e.sink.WaitFor(t, events.TypeTicketCreated, 1)
	if p, err := events.Decode[events.TicketCreated](created[0]); err != nil || p.ID != tk.ID || p.Version != 0 {
		t.Fatalf("ticket.created after recovery: %+v, %v", p, err)
	}
	e.sink.WaitFor(t, events.TypeTicketUpdated, 1)
	e.checkUpdates(e.get(tk.ID))
	coll, err := e.db.Collection(testenv.Context(t), collection)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Outbox bson.M `bson:"outbox"`
	}
	if err := coll.FindOne(testenv.Context(t), bson.M{}).Decode(&doc); err != nil || len(doc.Outbox) != 0 {
		t.Fatalf("after the flush the outbox still holds %v (%v)", doc.Outbox, err)
	}
}
