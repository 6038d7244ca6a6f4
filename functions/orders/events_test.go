package main

import (
	"encoding/json"
	"net/http"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestTicketCreatedIsReplicatedOnce(t *testing.T) {
	testenv.OnEachStore(t, testTicketCreatedIsReplicatedOnce)
}

func testTicketCreatedIsReplicatedOnce(t *testing.T) {
	// Arrange
	h := newHarness(t)
	seller := h.user(t, "seller")
	id := primitive.NewObjectID().Hex()
	created := events.New(events.TicketCreated{ID: id, Version: 0, Title: "Opera", Price: 5000, UserID: seller.ID})

	// Act: the Broker delivers it twice, once in each mode.
	first, _ := testenv.Send(t, h.URL, created, false)
	again, _ := testenv.Send(t, h.URL, created, true)

	// Assert
	if first != http.StatusAccepted || again != http.StatusAccepted {
		t.Fatalf("ticket.created answered %d then %d, want 202 twice", first, again)
	}
	r := h.replica(t, id)
	if r.Title != "Opera" || r.Price != 5000 || r.UserID != seller.ID || r.Version != 0 || r.ReservedBy != nil {
		t.Fatalf("replica %+v", r)
	}
}

func TestTicketUpdatesApplyInVersionOrderOnly(t *testing.T) {
	testenv.OnEachStore(t, testTicketUpdatesApplyInVersionOrderOnly)
}

func testTicketUpdatesApplyInVersionOrderOnly(t *testing.T) {
	// Arrange
	h := newHarness(t)
	seller := h.user(t, "seller")
	id := h.ticket(t, seller)
	v1 := events.New(events.TicketUpdated{ID: id, Version: 1, Title: "Version 1", Price: 1000, UserID: seller.ID})
	v2 := events.New(events.TicketUpdated{ID: id, Version: 2, Title: "Version 2", Price: 2000, UserID: seller.ID})

	// Act + Assert: v2 before v1 is a gap -> 503 and nothing applied.
	if status, _ := testenv.Send(t, h.URL, v2, false); status != http.StatusServiceUnavailable {
		t.Fatalf("v2 before v1 answered %d, want 503 (retry)", status)
	}
	if r := h.replica(t, id); r.Version != 0 || r.Title != "Concert, row 7" {
		t.Fatalf("a gapped update changed the replica: %+v", r)
	}
	// The missing v1 lands, then the Broker's redelivery of v2.
	for _, e := range []cloudevents.Event{v1, v2} {
		if status, _ := testenv.Send(t, h.URL, e, false); status != http.StatusAccepted {
			t.Fatalf("in-order update answered %d, want 202", status)
		}
	}
	if r := h.replica(t, id); r.Version != 2 || r.Title != "Version 2" || r.Price != 2000 {
		t.Fatalf("replica %+v, want version 2", r)
	}
	// Repeats of applied versions are 2xx no-ops.
	for _, e := range []cloudevents.Event{v1, v2} {
		if status, _ := testenv.Send(t, h.URL, e, true); status != http.StatusAccepted {
			t.Fatalf("repeat answered %d, want 202", status)
		}
	}
	if r := h.replica(t, id); r.Version != 2 || r.Title != "Version 2" {
		t.Fatalf("a repeat changed the replica: %+v", r)
	}
	// An order now carries the latest title and price.
	if o := h.mustBuy(t, h.user(t, "buyer"), id); o.Ticket.Title != "Version 2" || o.Ticket.Price != 2000 {
		t.Fatalf("order ticket %+v, want version 2's title and price", o.Ticket)
	}
}

func TestTicketUpdateBeforeItsCreationIsRetried(t *testing.T) {
	h := newHarness(t)
	seller := h.user(t, "seller")
	id := primitive.NewObjectID().Hex()
	v1 := events.New(events.TicketUpdated{ID: id, Version: 1, Title: "Later", Price: 100, UserID: seller.ID})

	if status, _ := testenv.Send(t, h.URL, v1, false); status != http.StatusServiceUnavailable {
		t.Fatalf("update of an unknown ticket answered %d, want 503", status)
	}
	h.send(t, events.TicketCreated{ID: id, Version: 0, Title: "First", Price: 100, UserID: seller.ID})
	if status, _ := testenv.Send(t, h.URL, v1, false); status != http.StatusAccepted {
		t.Fatalf("redelivered update answered %d, want 202", status)
	}
	if r := h.replica(t, id); r.Version != 1 || r.Title != "Later" {
		t.Fatalf("replica %+v", r)
	}
}

func TestTheTicketsViewOfTheReservationNeverBecomesOurs(t *testing.T) {
	// Arrange
	h := newHarness(t)
	seller := h.user(t, "seller")
	id := h.ticket(t, seller)

	// Act: tickets says some order holds the ticket.
	h.send(t, events.TicketUpdated{ID: id, Version: 1, Title: "Held elsewhere", Price: 100, UserID: seller.ID, OrderID: primitive.NewObjectID().Hex()})

	// Assert: only our own CAS reserves; the ticket can still be ordered.
	if r := h.replica(t, id); r.Version != 1 || r.ReservedBy != nil {
		t.Fatalf("replica %+v: reservedBy must stay ours", r)
	}
	h.mustBuy(t, h.user(t, "buyer"), id)
}

func TestMalformedEventsAreRefusedForGood(t *testing.T) {
	h := newHarness(t)
	raw := func(typ, data string) cloudevents.Event {
		e := cloudevents.NewEvent()
		e.SetID("bad")
		e.SetSource("/test")
		e.SetType(typ)
		_ = e.SetData(cloudevents.ApplicationJSON, json.RawMessage(data))
		return e
	}
	for name, e := range map[string]cloudevents.Event{
		"ticket.created without id":        raw(events.TypeTicketCreated, `{"version":0,"title":"a","price":1,"userId":"65a1b2c3d4e5f60718293a4b"}`),
		"ticket.updated not JSON":          raw(events.TypeTicketUpdated, `{"id":`),
		"expiration.completed without id":  raw(events.TypeExpirationCompleted, `{}`),
		"payment.created with zero amount": raw(events.TypePaymentCreated, `{"id":"65a1b2c3d4e5f60718293a4b","orderId":"65a1b2c3d4e5f60718293a4c","stripeId":"pi_1","amount":0,"currency":"usd"}`),
		"a type orders does not consume":   raw(events.TypeOrderCreated, `{}`),
	} {
		t.Run(name, func(t *testing.T) {
			if status, _ := testenv.Send(t, h.URL, e, false); status != http.StatusInternalServerError {
				t.Fatalf("answered %d, want 500 (never taken: retried, then dead-lettered)", status)
			}
		})
	}
}

func TestExpiryCancelsACreatedOrderAndReleasesItsTicketOnce(t *testing.T) {
	testenv.OnEachStore(t, testExpiryCancelsACreatedOrderAndReleasesItsTicketOnce)
}

func testExpiryCancelsACreatedOrderAndReleasesItsTicketOnce(t *testing.T) {
	// Arrange
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	expired := events.NewWithID("expiration-"+o.ID, events.ExpirationCompleted{OrderID: o.ID})

	// Act: delivered twice.
	first, _ := testenv.Send(t, h.URL, expired, false)
	again, _ := testenv.Send(t, h.URL, expired, false)

	// Assert
	if first != http.StatusAccepted || again != http.StatusAccepted {
		t.Fatalf("expiration.completed answered %d then %d, want 202 twice", first, again)
	}
	if got := h.get(t, buyer, o.ID); got.Status != StatusCancelled || got.Version != 1 {
		t.Fatalf("order %s v%d, want cancelled v1", got.Status, got.Version)
	}
	if n := len(h.published(events.TypeOrderCancelled, o.ID)); n != 1 {
		t.Fatalf("%d order.cancelled events, want 1", n)
	}
	h.wantReleased(t, ticketID)
}

func TestExpiryAfterPaymentChangesNothing(t *testing.T) {
	// Arrange
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	h.pay(t, o.ID, newPaymentID())
	h.Clock.Advance(window)

	// Act
	status, reply := h.send(t, events.ExpirationCompleted{OrderID: o.ID})

	// Assert
	if status != http.StatusAccepted || reply != nil {
		t.Fatalf("expiration.completed answered %d %v, want 202 and no reply", status, reply)
	}
	if got := h.get(t, buyer, o.ID); got.Status != StatusComplete || got.Version != 1 {
		t.Fatalf("order %s v%d, want complete v1", got.Status, got.Version)
	}
	if n := len(h.published(events.TypeOrderCancelled, "")); n != 0 {
		t.Fatalf("%d order.cancelled events, want none", n)
	}
	wantError(t, h.buy(t, h.user(t, "next"), ticketID), http.StatusBadRequest, "ticketId", "already reserved")
}

func TestExpiryOfAnUnknownOrderIsANoOp(t *testing.T) {
	h := newHarness(t)
	if status, _ := h.send(t, events.ExpirationCompleted{OrderID: primitive.NewObjectID().Hex()}); status != http.StatusAccepted {
		t.Fatalf("answered %d, want 202", status)
	}
	if n := len(h.published("", "")); n != 0 {
		t.Fatalf("%d events published, want none", n)
	}
}

func TestPaymentCompletesTheOrderOnce(t *testing.T) {
	testenv.OnEachStore(t, testPaymentCompletesTheOrderOnce)
}

func testPaymentCompletesTheOrderOnce(t *testing.T) {
	// Arrange
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	h.confirm(t, ticketID, o.ID)
	paymentID := newPaymentID()
	paid := events.New(events.PaymentCreated{ID: paymentID, OrderID: o.ID, StripeID: "pi_1", Amount: 1999, Currency: "usd"})

	// Act: delivered twice.
	first, reply1 := testenv.Send(t, h.URL, paid, false)
	again, reply2 := testenv.Send(t, h.URL, paid, true)

	// Assert
	if first != http.StatusAccepted || again != http.StatusAccepted || reply1 != nil || reply2 != nil {
		t.Fatalf("payment.created answered %d %v then %d %v, want 202 without reply twice", first, reply1, again, reply2)
	}
	got := h.get(t, buyer, o.ID)
	if got.Status != StatusComplete || got.Version != 1 || got.PaymentID != paymentID {
		t.Fatalf("order %+v, want complete v1 with payment %s", got, paymentID)
	}
	pub := h.published(events.TypeOrderCompleted, o.ID)
	if len(pub) != 1 {
		t.Fatalf("%d order.completed events, want 1", len(pub))
	}
	want := events.OrderCompleted{ID: o.ID, Version: 1, UserID: buyer.ID, UserEmail: buyer.Email, Ticket: o.Ticket, PaymentID: paymentID}
	if p, err := events.Decode[events.OrderCompleted](pub[0]); err != nil || p != want {
		t.Fatalf("order.completed %+v (%v), want %+v", p, err, want)
	}
}

// wantRejection checks that a payment.created was answered with payment.rejected as its reply.
func wantRejection(t *testing.T, status int, reply *cloudevents.Event, orderID, paymentID string) {
	t.Helper()
	if status != http.StatusOK || reply == nil || reply.Type() != events.TypePaymentRejected {
		t.Fatalf("payment.created answered %d with reply %v, want 200 and payment.rejected", status, reply)
	}
	p, err := events.Decode[events.PaymentRejected](*reply)
	if err != nil || p.OrderID != orderID || p.PaymentID != paymentID || reply.ID() != "rejected-"+paymentID {
		t.Fatalf("payment.rejected %s %+v (%v), want order %s payment %s", reply.ID(), p, err, orderID, paymentID)
	}
}

func TestLatePaymentAfterExpiryIsRejectedAndTheOrderCancelled(t *testing.T) {
	testenv.OnEachStore(t, testLatePaymentAfterExpiryIsRejectedAndTheOrderCancelled)
}

func testLatePaymentAfterExpiryIsRejectedAndTheOrderCancelled(t *testing.T) {
	// Arrange: the order's time runs out before the expiration event arrives.
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	h.Clock.Advance(window)
	paymentID := newPaymentID()
	paid := events.New(events.PaymentCreated{ID: paymentID, OrderID: o.ID, StripeID: "pi_1", Amount: 1999, Currency: "usd"})

	// Act: delivered twice, in both modes.
	status1, reply1 := testenv.Send(t, h.URL, paid, false)
	status2, reply2 := testenv.Send(t, h.URL, paid, true)

	// Assert
	wantRejection(t, status1, reply1, o.ID, paymentID)
	wantRejection(t, status2, reply2, o.ID, paymentID)
	if got := h.get(t, buyer, o.ID); got.Status != StatusCancelled || got.Version != 1 || got.PaymentID != "" {
		t.Fatalf("order %+v, want cancelled v1 without payment", got)
	}
	if n, c := len(h.published(events.TypeOrderCancelled, o.ID)), len(h.published(events.TypeOrderCompleted, "")); n != 1 || c != 0 {
		t.Fatalf("%d order.cancelled and %d order.completed events, want 1 and 0", n, c)
	}
	h.wantReleased(t, ticketID)
}

func TestPaymentOfACancelledOrderIsRejected(t *testing.T) {
	h := newHarness(t)
	buyer, _, o := h.placed(t)
	testenv.Call(t, http.MethodDelete, h.URL+"/api/orders/"+o.ID, nil, buyer.Token)
	paymentID := newPaymentID()

	status, reply := h.pay(t, o.ID, paymentID)

	wantRejection(t, status, reply, o.ID, paymentID)
	if got := h.get(t, buyer, o.ID); got.Status != StatusCancelled || len(h.published(events.TypeOrderCancelled, o.ID)) != 1 {
		t.Fatalf("order %+v: must stay cancelled with one order.cancelled", got)
	}
}

func TestASecondPaymentOfACompleteOrderIsRejected(t *testing.T) {
	h := newHarness(t)
	buyer, _, o := h.placed(t)
	first, second := newPaymentID(), newPaymentID()
	h.pay(t, o.ID, first)

	status, reply := h.pay(t, o.ID, second)

	wantRejection(t, status, reply, o.ID, second)
	if got := h.get(t, buyer, o.ID); got.Status != StatusComplete || got.PaymentID != first {
		t.Fatalf("order %+v, want complete with the first payment %s", got, first)
	}
	if n := len(h.published(events.TypeOrderCompleted, o.ID)); n != 1 {
		t.Fatalf("%d order.completed events, want 1", n)
	}
}

func TestPaymentOfAnUnknownOrderIsRejected(t *testing.T) {
	h := newHarness(t)
	orderID, paymentID := primitive.NewObjectID().Hex(), newPaymentID()

	status, reply := h.pay(t, orderID, paymentID)

	wantRejection(t, status, reply, orderID, paymentID)
}
