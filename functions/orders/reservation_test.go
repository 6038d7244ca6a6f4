package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/store"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// These tests cover what happens around the reservation: lazy takeover of an expired holder,
// and every point where a request can fail or crash between its writes.

func TestAnExpiredReservationIsTakenOverAndItsOrderCancelled(t *testing.T) {
	// Arrange: A's order runs out; no expiration event has arrived.
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	a, b := h.user(t, "a"), h.user(t, "b")
	old := h.mustBuy(t, a, ticketID)
	h.Clock.Advance(window)

	// Act
	taken := h.mustBuy(t, b, ticketID)

	// Assert: B holds the ticket, A is cancelled with its own event, published before B's.
	if got := h.replica(t, ticketID).ReservedBy; got == nil || got.Hex() != taken.ID {
		t.Fatalf("replica reservedBy %v, want the new order %s", got, taken.ID)
	}
	if got := h.get(t, a, old.ID); got.Status != StatusCancelled || got.Version != 1 {
		t.Fatalf("old order %s v%d, want cancelled v1", got.Status, got.Version)
	}
	var sequence []string
	for _, e := range h.published("", "") {
		sequence = append(sequence, e.Type()+" "+e.Subject())
	}
	want := []string{events.TypeOrderCreated + " " + old.ID, events.TypeOrderCancelled + " " + old.ID, events.TypeOrderCreated + " " + taken.ID}
	if len(sequence) != 3 || sequence[0] != want[0] || sequence[1] != want[1] || sequence[2] != want[2] {
		t.Fatalf("published %v, want %v", sequence, want)
	}

	// The official expiry of A arrives later: nothing more happens; A's late payment is refused.
	if status, _ := h.send(t, events.ExpirationCompleted{OrderID: old.ID}); status != http.StatusAccepted {
		t.Fatalf("expiration.completed answered %d", status)
	}
	paymentID := newPaymentID()
	status, reply := h.pay(t, old.ID, paymentID)
	wantRejection(t, status, reply, old.ID, paymentID)
	if n := len(h.published(events.TypeOrderCancelled, old.ID)); n != 1 {
		t.Fatalf("%d order.cancelled events for the old order, want 1", n)
	}
	if got := h.replica(t, ticketID).ReservedBy; got == nil || got.Hex() != taken.ID {
		t.Fatal("a stale event about the old order freed the new order's reservation")
	}
}

func TestConcurrentTakeoversOfOneExpiredReservationHaveOneWinner(t *testing.T) {
	testenv.OnEachAtomicStore(t, testConcurrentTakeoversOfOneExpiredReservationHaveOneWinner)
}

func testConcurrentTakeoversOfOneExpiredReservationHaveOneWinner(t *testing.T) {
	// Arrange
	const buyers = 50
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	old := h.mustBuy(t, h.user(t, "a"), ticketID)
	h.Clock.Advance(2 * window)
	users := make([]testenv.User, buyers)
	for i := range users {
		users[i] = h.user(t, "b")
	}

	// Act
	statuses := make([]int, buyers)
	done := make(chan int)
	for i := range users {
		go func() {
			statuses[i], _, _ = post(h.URL+"/api/orders", users[i].Token, map[string]string{"ticketId": ticketID})
			done <- i
		}()
	}
	for range users {
		testenv.Receive(t, done, time.Minute, "a buyer's answer")
	}

	// Assert
	won := 0
	for i, s := range statuses {
		switch s {
		case http.StatusCreated:
			won++
		case http.StatusBadRequest:
		default:
			t.Fatalf("buyer %d got %d, want 201 or 400", i, s)
		}
	}
	if won != 1 {
		t.Fatalf("%d buyers took the expired reservation, want exactly 1", won)
	}
	if n := len(h.published(events.TypeOrderCancelled, old.ID)); n != 1 {
		t.Fatalf("%d order.cancelled events for the expired order, want 1", n)
	}
}

func TestAPaidOrderKeepsItsTicketForever(t *testing.T) {
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	o := h.mustBuy(t, h.user(t, "a"), ticketID)
	h.pay(t, o.ID, newPaymentID())
	h.Clock.Advance(10 * window)

	r := h.buy(t, h.user(t, "b"), ticketID)

	wantError(t, r, http.StatusBadRequest, "ticketId", "Ticket is already reserved")
}

func TestAFailedOrderWriteGivesTheTicketBack(t *testing.T) {
	// Arrange: the next order id is one that exists, so writing the order fails after the CAS.
	h := newHarness(t)
	seller, buyer := h.user(t, "seller"), h.user(t, "buyer")
	existing := h.mustBuy(t, buyer, h.ticket(t, seller))
	ticketID := h.ticket(t, seller)
	clash, _ := primitive.ObjectIDFromHex(existing.ID)
	h.IDs.Force(&clash)

	// Act
	r := h.buy(t, buyer, ticketID)

	// Assert: a 500, the ticket free again at once, nothing published for it.
	if r.Status != http.StatusInternalServerError {
		t.Fatalf("POST answered %d %s, want 500", r.Status, r.Body)
	}
	if got := h.replica(t, ticketID).ReservedBy; got != nil {
		t.Fatalf("the failed order still holds the ticket: reservedBy %s", got.Hex())
	}
	if n := len(h.published(events.TypeOrderCreated, "")); n != 1 {
		t.Fatalf("%d order.created events, want only the first order's", n)
	}
	if got := h.get(t, buyer, existing.ID); got != existing {
		t.Fatalf("the order that owns the id changed: %+v, was %+v", got, existing)
	}
	h.IDs.Force(nil)
	h.mustBuy(t, buyer, ticketID)
}

// faultyOrders wraps the orders collection to make the order's insert fail: before it is
// written, or after (the server wrote it, the caller hears an error: a timeout); and
// optionally the read that follows, too.
type faultyOrders struct {
	lungo.ICollection
	landed  bool
	readErr error
}

var errInjected = errors.New("injected fault")

func (f faultyOrders) InsertOne(ctx context.Context, doc any, opts ...*options.InsertOneOptions) (*mongo.InsertOneResult, error) {
	if f.landed {
		if _, err := f.ICollection.InsertOne(ctx, doc, opts...); err != nil {
			return nil, err
		}
	}
	return nil, errInjected
}

func (f faultyOrders) FindOne(ctx context.Context, filter any, opts ...*options.FindOneOptions) lungo.ISingleResult {
	if f.readErr != nil {
		return mongo.NewSingleResultFromDocument(bson.D{}, f.readErr, nil)
	}
	return f.ICollection.FindOne(ctx, filter, opts...)
}

func withFaultyOrders(f faultyOrders) func(*service) {
	return func(s *service) {
		s.store.open = wrap(s.store.open, ordersCollection, func(c lungo.ICollection) lungo.ICollection {
			f.ICollection = c
			return f
		})
	}
}

// wrap returns open with collection name wrapped by w.
func wrap(open func(context.Context, string) (lungo.ICollection, error), name string, w func(lungo.ICollection) lungo.ICollection) func(context.Context, string) (lungo.ICollection, error) {
	return func(ctx context.Context, n string) (lungo.ICollection, error) {
		c, err := open(ctx, n)
		if err != nil || n != name {
			return c, err
		}
		return w(c), nil
	}
}

func TestALostOrderWriteGivesTheTicketBack(t *testing.T) {
	// Arrange
	h := newHarness(t, withFaultyOrders(faultyOrders{}))
	ticketID := h.ticket(t, h.user(t, "seller"))

	// Act
	r := h.buy(t, h.user(t, "buyer"), ticketID)

	// Assert
	if r.Status != http.StatusInternalServerError {
		t.Fatalf("POST answered %d %s, want 500", r.Status, r.Body)
	}
	if got := h.replica(t, ticketID).ReservedBy; got != nil {
		t.Fatalf("the lost order still holds the ticket: reservedBy %s", got.Hex())
	}
	if n := len(h.published("", "")); n != 0 {
		t.Fatalf("%d events published for an order that does not exist", n)
	}
}

func TestAnOrderWriteThatLandedDespiteItsErrorStands(t *testing.T) {
	// Arrange
	h := newHarness(t, withFaultyOrders(faultyOrders{landed: true}))
	ticketID := h.ticket(t, h.user(t, "seller"))
	buyer := h.user(t, "buyer")

	// Act
	o := h.mustBuy(t, buyer, ticketID)

	// Assert: the order is what the buyer was told, it holds the ticket, and it was announced.
	if got := h.get(t, buyer, o.ID); got != o {
		t.Fatalf("stored %+v, answered %+v", got, o)
	}
	if got := h.replica(t, ticketID).ReservedBy; got == nil || got.Hex() != o.ID {
		t.Fatalf("replica reservedBy %v, want %s", got, o.ID)
	}
	if n := len(h.published(events.TypeOrderCreated, o.ID)); n != 1 {
		t.Fatalf("%d order.created events, want 1", n)
	}
}

func TestAnOrderWriteOfUnknownOutcomeKeepsTheReservationUntilItsExpiry(t *testing.T) {
	// Arrange: the insert fails and so does the read that would tell whether it landed.
	h := newHarness(t, withFaultyOrders(faultyOrders{readErr: errInjected}))
	ticketID := h.ticket(t, h.user(t, "seller"))

	// Act
	r := h.buy(t, h.user(t, "buyer"), ticketID)

	// Assert: the reservation stays (the order may exist), bounded by the order's expiry.
	if r.Status != http.StatusInternalServerError {
		t.Fatalf("POST answered %d %s, want 500", r.Status, r.Body)
	}
	replica := h.replica(t, ticketID)
	if replica.ReservedBy == nil || !replica.ReservedUntil.Equal(h.Clock.Now().Add(window)) {
		t.Fatalf("replica %+v: want the reservation kept until now+window", replica)
	}
	if !replica.Free(nil, h.Clock.Now().Add(window)) {
		t.Fatal("a reservation without an order must end at its expiry")
	}
}

func TestAReservationWhoseOrderWasNeverWrittenEndsAtItsExpiry(t *testing.T) {
	// Arrange: the state a crash between the CAS and the order's insert leaves behind.
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	tid, _ := primitive.ObjectIDFromHex(ticketID)
	ok, err := h.Store.reserve(context.Background(), tid, nil, primitive.NewObjectID(), h.Clock.Now().Add(window))
	if err != nil || !ok {
		t.Fatalf("reserve: %v %v", ok, err)
	}
	buyer := h.user(t, "buyer")

	// Act + Assert: held until the ghost order would have expired, then free.
	h.Clock.Advance(window - time.Millisecond)
	wantError(t, h.buy(t, buyer, ticketID), http.StatusBadRequest, "ticketId", "already reserved")
	h.Clock.Advance(time.Millisecond)
	o := h.mustBuy(t, buyer, ticketID)
	if got := h.replica(t, ticketID).ReservedBy; got == nil || got.Hex() != o.ID {
		t.Fatalf("replica reservedBy %v, want %s", got, o.ID)
	}
}

func TestACancelledOrderLeftOnTheReplicaDoesNotHoldTheTicket(t *testing.T) {
	// Arrange: the state a crash between the cancel and the release leaves behind.
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	a := h.user(t, "a")
	o := h.mustBuy(t, a, ticketID)
	oid, _ := primitive.ObjectIDFromHex(o.ID)
	stored, err := h.Store.order(context.Background(), oid)
	if err != nil {
		t.Fatal(err)
	}
	cancelled := events.New(events.OrderCancelled{ID: o.ID, Version: 1, Ticket: events.OrderTicket{ID: ticketID}})
	if err := h.Store.transition(context.Background(), stored, StatusCancelled, nil, cancelled); err != nil {
		t.Fatal(err)
	}

	// Act: well before A's expiry.
	taken := h.mustBuy(t, h.user(t, "b"), ticketID)

	// Assert
	if got := h.replica(t, ticketID).ReservedBy; got == nil || got.Hex() != taken.ID {
		t.Fatalf("replica reservedBy %v, want %s", got, taken.ID)
	}
}

func TestEventsLeftByABrokerOutageGoOutLater(t *testing.T) {
	// Arrange: the Broker refuses everything while the order is placed.
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	h.Sink.Fail(http.StatusServiceUnavailable, -1)

	// Act
	o := h.mustBuy(t, h.user(t, "buyer"), ticketID)
	if n := len(h.published("", "")); n != 0 {
		t.Fatalf("%d events accepted by a Broker that is down", n)
	}
	h.Sink.Recover()
	h.Fn.Background(testenv.Context(t))

	// Assert: order.created went out (a concurrent retry may repeat it, with the same id).
	got := h.Sink.WaitFor(t, events.TypeOrderCreated, 1)
	for _, e := range got {
		if e.Subject() != o.ID || e.ID() != got[0].ID() {
			t.Fatalf("published %s about %s, want repeats of one event about %s", e.ID(), e.Subject(), o.ID)
		}
	}
}

func TestReserveIsOneAtomicCompareAndSet(t *testing.T) {
	testenv.OnEachAtomicStore(t, testReserveIsOneAtomicCompareAndSet)
}

func testReserveIsOneAtomicCompareAndSet(t *testing.T) {
	// Arrange: the CAS itself, without the HTTP round trip that spaces racing requests out.
	const racers = 200
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	tid, _ := primitive.ObjectIDFromHex(ticketID)
	ctx := context.Background()

	// Act: every racer read the ticket free and tries to take it.
	wins := make(chan primitive.ObjectID, racers)
	errs := make(chan error, racers)
	start := make(chan struct{})
	for range racers {
		go func() {
			<-start
			order := primitive.NewObjectID()
			ok, err := h.Store.reserve(ctx, tid, nil, order, h.Clock.Now().Add(window))
			if ok {
				wins <- order
			}
			errs <- err
		}()
	}
	close(start)
	for range racers {
		if err := testenv.Receive(t, errs, time.Minute, "a racer's result"); err != nil {
			t.Fatal(err)
		}
	}
	close(wins)

	// Assert
	var winners []primitive.ObjectID
	for w := range wins {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("%d racers reserved the ticket, want exactly 1", len(winners))
	}
	if got := h.replica(t, ticketID).ReservedBy; got == nil || *got != winners[0] {
		t.Fatalf("replica reservedBy %v, want the winner %s", got, winners[0].Hex())
	}
}

// casHook runs a function once, right before the first reservation CAS on the tickets
// collection: a window into the moment between the takeover's decision and its write.
type casHook struct {
	lungo.ICollection
	before func()
}

func (c casHook) UpdateOne(ctx context.Context, filter, update any, opts ...*options.UpdateOptions) (*mongo.UpdateResult, error) {
	if set, _ := update.(bson.M)["$set"].(bson.M); set["reservedBy"] != nil {
		c.before()
	}
	return c.ICollection.UpdateOne(ctx, filter, update, opts...)
}

func TestATakeoverAndALatePaymentOfItsHolderCannotBothWin(t *testing.T) {
	testenv.OnEachAtomicStore(t, testATakeoverAndALatePaymentOfItsHolderCannotBothWin)
}

func testATakeoverAndALatePaymentOfItsHolderCannotBothWin(t *testing.T) {
	// Arrange: A's payment was decided while A was payable; it writes in the very moment
	// between the takeover's decision and its CAS.
	var (
		h          *harness
		stale      Order
		armed      atomic.Bool // set once stale is read: A's own reservation must not trigger it
		once       sync.Once
		paymentErr error
	)
	latePayment := func() {
		completed := events.New(events.OrderCompleted{ID: stale.ID.Hex(), Version: 1})
		paymentErr = h.Store.transition(context.Background(), stale, StatusComplete, bson.M{"paymentId": "late"}, completed)
	}
	h = newHarness(t, func(s *service) {
		s.store.open = wrap(s.store.open, ticketsCollection, func(c lungo.ICollection) lungo.ICollection {
			return casHook{ICollection: c, before: func() {
				if armed.Load() {
					once.Do(latePayment)
				}
			}}
		})
	})
	a, ticketID, old := h.placed(t)
	oid, _ := primitive.ObjectIDFromHex(old.ID)
	stale, _ = h.Store.order(context.Background(), oid)
	if !stale.Payable(h.Clock.Now()) {
		t.Fatalf("order %+v should be payable now", stale)
	}
	armed.Store(true)
	h.Clock.Advance(window)

	// Act
	r := h.buy(t, h.user(t, "b"), ticketID)

	// Assert: the takeover cancelled A before its CAS, so the payment's write lost; exactly
	// one of the two owns the ticket.
	if !errors.Is(paymentErr, store.ErrConflict) {
		t.Fatalf("the late payment's write: %v, want store.ErrConflict (the takeover cancels first)", paymentErr)
	}
	if r.Status != http.StatusCreated {
		t.Fatalf("takeover answered %d %s, want 201", r.Status, r.Body)
	}
	if got := h.get(t, a, old.ID); got.Status != StatusCancelled {
		t.Fatalf("the old order is %s, want cancelled", got.Status)
	}
}
