// events_test.go: the order replica, captures, releases and refunds, through the real event receiver.
package main

import (
	"net/http"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func cancelled(orderID string, version int64) cloudevents.Event {
	return events.New(events.OrderCancelled{ID: orderID, Version: version, Ticket: events.OrderTicket{ID: primitive.NewObjectID().Hex()}})
}

func completed(orderID, userID string, version int64) cloudevents.Event {
	return events.New(events.OrderCompleted{ID: orderID, Version: version, UserID: userID, UserEmail: "buyer@example.com",
		Ticket: events.OrderTicket{ID: primitive.NewObjectID().Hex(), Title: "t", Price: 1999}, PaymentID: primitive.NewObjectID().Hex()})
}

func TestOrderCreatedBuildsTheReplica(t *testing.T) {
	testenv.OnEachStore(t, testOrderCreatedBuildsTheReplica)
}

func testOrderCreatedBuildsTheReplica(t *testing.T) {
	h := newHarness(t, newStandIn(t).URL)
	userID, orderID := primitive.NewObjectID().Hex(), primitive.NewObjectID().Hex()
	expiresAt := time.Date(2030, 1, 1, 0, 15, 0, 0, time.UTC)
	e := orderEvent(t, orderID, userID, "19.99", expiresAt)

	for range 2 { // the second delivery is a duplicate
		if status := h.send(t, e); status != http.StatusAccepted {
			t.Fatalf("order.created answered %d, want 202", status)
		}
	}

	o, found := h.replica(t, orderID)
	if !found || o.Version != 0 || o.UserID != userID || o.Price != 1999 || o.Status != events.StatusCreated || !o.ExpiresAt.Equal(expiresAt) {
		t.Fatalf("replica %+v (found %v)", o, found)
	}
}

func TestOrderStatusEventsApplyInVersionOrder(t *testing.T) {
	testenv.OnEachStore(t, testOrderStatusEventsApplyInVersionOrder)
}

func testOrderStatusEventsApplyInVersionOrder(t *testing.T) {
	h := newHarness(t, newStandIn(t).URL)
	buyer := h.user(t)

	t.Run("cancelled applies once; a repeat is a 2xx no-op", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		for range 2 {
			if status := h.send(t, cancelled(orderID, 1)); status != http.StatusAccepted {
				t.Fatalf("order.cancelled answered %d, want 202", status)
			}
		}
		if o, _ := h.replica(t, orderID); o.Status != events.StatusCancelled || o.Version != 1 {
			t.Fatalf("replica %+v: want cancelled at version 1", o)
		}
	})
	t.Run("completed applies", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		if status := h.send(t, completed(orderID, buyer.ID, 1)); status != http.StatusAccepted {
			t.Fatalf("order.completed answered %d, want 202", status)
		}
		if o, _ := h.replica(t, orderID); o.Status != events.StatusComplete || o.Version != 1 {
			t.Fatalf("replica %+v: want complete at version 1", o)
		}
	})
	t.Run("an event older than the replica is a 2xx no-op", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		h.send(t, completed(orderID, buyer.ID, 1))
		if status := h.send(t, cancelled(orderID, 1)); status != http.StatusAccepted {
			t.Fatalf("stale order.cancelled answered %d, want 202", status)
		}
		if o, _ := h.replica(t, orderID); o.Status != events.StatusComplete {
			t.Fatalf("a stale event changed the replica to %q", o.Status)
		}
	})
	t.Run("a version gap answers 503 and changes nothing", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		if status := h.send(t, cancelled(orderID, 2)); status != http.StatusServiceUnavailable {
			t.Fatalf("order.cancelled v2 on a v0 replica answered %d, want 503", status)
		}
		if o, _ := h.replica(t, orderID); o.Status != events.StatusCreated || o.Version != 0 {
			t.Fatalf("replica %+v changed by an event out of order", o)
		}
	})
	t.Run("cancelled or completed before order.created answer 503", func(t *testing.T) {
		orderID := primitive.NewObjectID().Hex()
		for _, e := range []cloudevents.Event{cancelled(orderID, 1), completed(orderID, buyer.ID, 1)} {
			if status := h.send(t, e); status != http.StatusServiceUnavailable {
				t.Fatalf("%s before order.created answered %d, want 503", e.Type(), status)
			}
		}
		if _, found := h.replica(t, orderID); found {
			t.Fatal("an early event created a replica")
		}
	})
	t.Run("malformed events are never taken: 500, retried, then dead-lettered", func(t *testing.T) {
		bad := events.New(events.OrderCancelled{ID: "nope", Version: 1})
		if status := h.send(t, bad); status != http.StatusInternalServerError {
			t.Fatalf("malformed order.cancelled answered %d, want 500", status)
		}
		e := orderEvent(t, primitive.NewObjectID().Hex(), buyer.ID, "19.999", time.Now().Add(time.Hour))
		if status := h.send(t, e); status != http.StatusInternalServerError {
			t.Fatalf("order.created with a price of 3 decimals answered %d, want 500", status)
		}
	})
}

// paid pays a fresh order and returns its payment.
func paid(t *testing.T, h *harness) Payment {
	t.Helper()
	buyer := h.user(t)
	orderID := h.order(t, buyer, "10", time.Hour)
	expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusCreated)
	return h.paymentOf(t, orderID)
}

func rejected(p Payment) cloudevents.Event {
	return events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: p.ID.Hex()})
}

func TestPaymentRejectedRefundsOnce(t *testing.T) {
	testenv.OnEachStore(t, testPaymentRejectedRefundsOnce)
}

func testPaymentRejectedRefundsOnce(t *testing.T) {
	t.Run("delivered twice", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		p := paid(t, h)
		e := rejected(p)

		for range 2 {
			if status := h.send(t, e); status != http.StatusAccepted {
				t.Fatalf("payment.rejected answered %d, want 202", status)
			}
		}

		if _, refunds := stripe.counts(); refunds != 1 {
			t.Fatalf("%d refunds, want 1", refunds)
		}
		if got := h.paymentOf(t, p.OrderID); got.Status != paymentRefunded || got.RefundID == "" {
			t.Fatalf("payment %+v: want refunded with the refund's id", got)
		}
	})
	t.Run("delivered twice at once", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		p := paid(t, h)
		e := rejected(p)

		for _, status := range twiceAtOnce(t, h, e) {
			if status != http.StatusAccepted {
				t.Errorf("payment.rejected answered %d, want 202", status)
			}
		}

		if _, refunds := stripe.counts(); refunds != 1 {
			t.Fatalf("%d refunds, want 1", refunds)
		}
		if got := h.paymentOf(t, p.OrderID); got.Status != paymentRefunded {
			t.Fatalf("payment is %q, want refunded", got.Status)
		}
	})
	t.Run("Stripe unreachable: 503, still succeeded, refunded on redelivery", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		p := paid(t, h)
		stripe.setMode("lose-answer")

		if status := h.send(t, rejected(p)); status != http.StatusServiceUnavailable {
			t.Fatalf("payment.rejected answered %d, want 503", status)
		}
		if got := h.paymentOf(t, p.OrderID); got.Status != paymentSucceeded {
			t.Fatalf("payment is %q after a failed refund, want succeeded", got.Status)
		}
		stripe.setMode("")
		if status := h.send(t, rejected(p)); status != http.StatusAccepted {
			t.Fatalf("redelivery answered %d, want 202", status)
		}
		if _, refunds := stripe.counts(); refunds != 1 {
			t.Fatalf("%d refunds, want 1 (the lost one, replayed)", refunds)
		}
	})
	t.Run("a payment this function does not know is a 2xx no-op", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		p := paid(t, h)
		unknown := events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: primitive.NewObjectID().Hex()})
		otherOrder := events.New(events.PaymentRejected{OrderID: primitive.NewObjectID().Hex(), PaymentID: p.ID.Hex()})

		for _, e := range []cloudevents.Event{unknown, otherOrder} {
			if status := h.send(t, e); status != http.StatusAccepted {
				t.Fatalf("payment.rejected answered %d, want 202", status)
			}
		}

		if _, refunds := stripe.counts(); refunds != 0 {
			t.Fatalf("%d refunds, want none", refunds)
		}
	})
}

func TestUnknownEventTypeIsNeverTaken(t *testing.T) {
	h := newHarness(t, newStandIn(t).URL)
	e := events.New(events.TicketCreated{ID: primitive.NewObjectID().Hex(), Title: "t", Price: 100, UserID: primitive.NewObjectID().Hex()})
	if status, _ := testenv.Send(t, h.URL, e, true); status != http.StatusInternalServerError {
		t.Fatalf("ticket.created answered %d, want 500", status)
	}
}

func TestHandlesExactlyTheEventsTheCatalogueRoutesHere(t *testing.T) {
	h := newHarness(t, newStandIn(t).URL)
	want := events.Consumed("payments")
	if len(h.fn.Events) != len(want) {
		t.Fatalf("handles %d event types, the catalogue routes %v", len(h.fn.Events), want)
	}
	for _, typ := range want {
		if h.fn.Events[typ] == nil {
			t.Errorf("no handler for %s, which the catalogue routes to payments", typ)
		}
	}
}

// twiceAtOnce delivers e twice at the same moment and returns both statuses.
func twiceAtOnce(t *testing.T, h *harness, e cloudevents.Event) []int {
	t.Helper()
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() { statuses[i] = h.send(t, e) })
	}
	testenv.Wait(t, &wg, 5*time.Minute, "both deliveries")
	return statuses
}

// authorized starts paying a fresh order while the test plays orders, and returns the payment
// once it is authorized, with the channel the payment request will answer on.
func authorized(t *testing.T, h *harness) (Payment, <-chan testenv.Response) {
	t.Helper()
	h.manual.Store(true)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "10", time.Hour)
	answer := make(chan testenv.Response, 1)
	go func() { answer <- h.pay(t, buyer, orderID, pmVisa) }()
	return h.waitStatus(t, orderID, paymentAuthorized), answer
}

func TestPaymentRejectedReleasesTheAuthorizationOnce(t *testing.T) {
	t.Run("delivered twice at once: one release, nothing charged, the buyer told so", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		p, answer := authorized(t, h)
		e := events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: p.ID.Hex(), Reason: events.RejectedExpired})

		for _, status := range twiceAtOnce(t, h, e) {
			if status != http.StatusAccepted {
				t.Errorf("payment.rejected answered %d, want 202", status)
			}
		}

		if msg := expectStatus(t, receive(t, answer), http.StatusBadRequest); msg != ErrReleasedExpired.Error() {
			t.Fatalf("the payment request answered %q, want %q", msg, ErrReleasedExpired.Error())
		}
		held, released := stripe.holds()
		if charges, refunds := stripe.counts(); held != 1 || released != 1 || charges != 0 || refunds != 0 {
			t.Fatalf("Stripe: %d held, %d released, %d charged, %d refunded; want 1 held and released, none charged",
				held, released, charges, refunds)
		}
		if got := h.paymentOf(t, p.OrderID); got.Status != paymentReleased || got.Reason != events.RejectedExpired {
			t.Fatalf("payment %+v, want released (expired)", got)
		}
	})
	t.Run("Stripe unreachable: 503, still authorized, released once on redelivery", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		p, answer := authorized(t, h)
		e := events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: p.ID.Hex(), Reason: events.RejectedCancelled})
		stripe.setMode("lose-answer")

		if status := h.send(t, e); status != http.StatusServiceUnavailable {
			t.Fatalf("payment.rejected answered %d, want 503", status)
		}
		if got := h.paymentOf(t, p.OrderID); got.Status != paymentAuthorized {
			t.Fatalf("payment is %q after a failed release, want authorized", got.Status)
		}
		stripe.setMode("")
		if status := h.send(t, e); status != http.StatusAccepted {
			t.Fatalf("redelivery answered %d, want 202", status)
		}
		expectStatus(t, receive(t, answer), http.StatusBadRequest)
		if _, released := stripe.holds(); released != 1 {
			t.Fatalf("%d releases, want 1 (the lost one, replayed)", released)
		}
	})
	t.Run("order.completed captures the authorized payment once, even delivered twice at once", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		p, answer := authorized(t, h)
		e := events.New(events.OrderCompleted{ID: p.OrderID, Version: 1, UserID: p.UserID, UserEmail: "buyer@example.com",
			Ticket: events.OrderTicket{ID: primitive.NewObjectID().Hex(), Title: "t", Price: 1000}, PaymentID: p.ID.Hex()})

		for _, status := range twiceAtOnce(t, h, e) {
			// 503: the parallel delivery won the replica's update; the Broker's retry sees it applied.
			if status != http.StatusAccepted && status != http.StatusServiceUnavailable {
				t.Errorf("order.completed answered %d, want 202 (or 503, retried)", status)
			}
		}
		if status := h.send(t, e); status != http.StatusAccepted {
			t.Fatalf("order.completed redelivered answered %d, want 202", status)
		}

		expectStatus(t, receive(t, answer), http.StatusCreated)
		if charges, _ := stripe.counts(); charges != 1 {
			t.Fatalf("%d captures, want 1", charges)
		}
		if got := h.paymentOf(t, p.OrderID); got.Status != paymentSucceeded {
			t.Fatalf("payment is %q, want succeeded", got.Status)
		}
	})
}

// A request waiting for orders' decision is answered when this process records it, not at its
// next read of the database: here no read comes before the 1-hour wait ends, so only the wake
// can answer. Both decisions: the capture (201) and the release (400, not charged).
func TestAWaitingPaymentIsAnsweredWhenThisProcessRecordsTheDecision(t *testing.T) {
	never := waiting{outcome: time.Hour, pollFirst: time.Hour, pollLongest: time.Hour}
	for name, decide := range map[string]struct {
		event  func(p Payment) cloudevents.Event
		status int
	}{
		"order.completed": {func(p Payment) cloudevents.Event {
			return events.New(events.OrderCompleted{ID: p.OrderID, Version: 1, UserID: p.UserID, UserEmail: "buyer@example.com",
				Ticket: events.OrderTicket{ID: primitive.NewObjectID().Hex(), Title: "t", Price: 1000}, PaymentID: p.ID.Hex()})
		}, http.StatusCreated},
		"payment.rejected": {func(p Payment) cloudevents.Event {
			return events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: p.ID.Hex(), Reason: events.RejectedExpired})
		}, http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarnessWaiting(t, newStandIn(t).URL, never)
			p, answer := authorized(t, h)

			if status := h.send(t, decide.event(p)); status != http.StatusAccepted {
				t.Fatalf("%s answered %d, want 202", name, status)
			}

			expectStatus(t, receive(t, answer), decide.status)
		})
	}
}

func TestDecisionsWakeEveryWaiterOfThePaymentOnly(t *testing.T) {
	var d decisions
	a, b := primitive.NewObjectID(), primitive.NewObjectID()
	a1, stopA1 := d.watch(a)
	a2, stopA2 := d.watch(a)
	onB, stopB := d.watch(b)
	defer stopA1()
	defer stopA2()
	defer stopB()

	d.decided(a)

	for _, ch := range []<-chan struct{}{a1, a2} {
		testenv.Receive(t, ch, time.Minute, "the wake of a waiter of a")
	}
	select {
	case <-onB:
		t.Fatal("a decision on a woke a waiter of b")
	default:
	}
	stopB()
	d.decided(b) // nobody watches b any more: nothing to wake, nothing closed twice
	if len(d.waiters) != 0 {
		t.Fatalf("%d payments still watched", len(d.waiters))
	}
}
