// stripemock_test.go: the paths stripe-mock can show, against stripe-mock, which validates every
// request against Stripe's API description. testdata/stripe-fixtures.json makes a confirmed
// PaymentIntent come back requires_capture (authorized, capture_method manual); capture and
// cancel answer 200 (stripe-mock is stateless: its PaymentIntent keeps the fixture's status).
// One stripe-mock serves the whole group (it takes seconds to start).
package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

const stripeFixtures = "testdata/stripe-fixtures.json"

func TestAgainstStripeMock(t *testing.T) {
	base := testenv.StripeMock(t, stripeFixtures)

	t.Run("a confirmed PaymentIntent is authorized, publishes payment.created, and is captured on order.completed", func(t *testing.T) {
		// Arrange
		h := newHarness(t, base)
		buyer := h.user(t)
		orderID := h.order(t, buyer, "19.99", time.Hour)

		// Act
		r := h.pay(t, buyer, orderID, pmVisa)

		// Assert
		expectStatus(t, r, http.StatusCreated)
		var got paymentView
		r.JSON(t, &got)
		if got.OrderID != orderID || !strings.HasPrefix(got.StripeID, "pi_") || !events.IsID(got.ID) {
			t.Fatalf("201 body %+v: want the order id, a pi_ id and a payment id", got)
		}
		stored := h.paymentOf(t, orderID)
		if stored.Status != paymentSucceeded || stored.StripeID != got.StripeID || stored.Amount != 1999 || stored.Currency != "usd" {
			t.Fatalf("stored payment %+v", stored)
		}
		ev := paymentCreated(t, h.sink.WaitFor(t, events.TypePaymentCreated, 1)[0])
		want := events.PaymentCreated{ID: got.ID, OrderID: orderID, StripeID: got.StripeID, Amount: 1999, Currency: "usd"}
		if ev != want {
			t.Fatalf("payment.created %+v, want %+v", ev, want)
		}
	})

	t.Run("amounts reach Stripe as exact integer cents", func(t *testing.T) {
		h := newHarness(t, base)
		buyer := h.user(t)
		// Literals whose float product with 100 is not the integer: 19.99*100 = 1998.9999999999998.
		for price, cents := range map[string]int64{"19.99": 1999, "0.57": 57, "1.15": 115, "4.35": 435,
			"0.5": 50, "19.990": 1999, "1e2": 10000, "999999.99": 99999999} {
			orderID := h.order(t, buyer, price, time.Hour)
			r := h.pay(t, buyer, orderID, pmVisa)
			expectStatus(t, r, http.StatusCreated)
			var got paymentView
			r.JSON(t, &got)
			// stripe-mock echoes the request's amount into the PaymentIntent; that is what we store.
			if got.Amount != cents {
				t.Errorf("price %s: Stripe charged %d cents, want %d", price, got.Amount, cents)
			}
		}
	})

	t.Run("a payment that loses to a cancel is released through Stripe: 400, nothing charged", func(t *testing.T) {
		h := newHarness(t, base)
		h.manual.Store(true) // this test answers as orders
		buyer := h.user(t)
		orderID := h.order(t, buyer, "25", time.Hour)

		answer := make(chan testenv.Response, 1)
		go func() { answer <- h.pay(t, buyer, orderID, pmVisa) }()
		held := paymentCreated(t, h.sink.WaitFor(t, events.TypePaymentCreated, 1)[0])
		status := h.send(t, events.New(events.PaymentRejected{OrderID: orderID, PaymentID: held.ID, Reason: events.RejectedCancelled}))

		if status != http.StatusAccepted {
			t.Fatalf("payment.rejected answered %d, want 202", status)
		}
		r := receive(t, answer)
		if msg := expectStatus(t, r, http.StatusBadRequest); msg != ErrReleasedCancelled.Error() {
			t.Fatalf("message %q, want %q", msg, ErrReleasedCancelled.Error())
		}
		if p := h.paymentOf(t, orderID); p.Status != paymentReleased || p.Reason != events.RejectedCancelled {
			t.Fatalf("payment after the release: %+v", p)
		}
	})

	t.Run("a price Stripe never charges is refused for good: 400, payment.refused, nothing sent to Stripe", func(t *testing.T) {
		h := newHarness(t, base)
		buyer := h.user(t)
		for _, price := range []string{"1000000", "0.49"} {
			orderID := h.order(t, buyer, price, time.Hour)

			r := h.pay(t, buyer, orderID, pmVisa)

			msg := expectStatus(t, r, http.StatusBadRequest)
			if !strings.Contains(msg, "cannot be paid") {
				t.Fatalf("price %s: message %q, want it to say the price cannot be paid", price, msg)
			}
			if p := h.paymentOf(t, orderID); p.Status != paymentRefused || p.StripeID != "" {
				t.Fatalf("price %s: payment %+v, want refused without a PaymentIntent", price, p)
			}
			var refused *events.PaymentRefused
			for _, e := range h.sink.WaitFor(t, events.TypePaymentRefused, 1) {
				if p, err := events.Decode[events.PaymentRefused](e); err == nil && p.OrderID == orderID {
					refused = &p
				}
			}
			if refused == nil || refused.Reason != msg {
				t.Fatalf("price %s: payment.refused %+v, want one for the order with the buyer's message", price, refused)
			}
			// Asking again gets the same refusal, and still nothing reaches Stripe.
			if again := expectStatus(t, h.pay(t, buyer, orderID, pmMastercard), http.StatusBadRequest); again != msg {
				t.Fatalf("price %s: second answer %q, want %q", price, again, msg)
			}
		}
		if n := len(h.sink.Events(events.TypePaymentCreated)); n != 0 {
			t.Fatalf("%d payment.created events for prices Stripe refuses", n)
		}
	})
}

// receive waits up to 20 s for the answer of a request made on another goroutine.
func receive(t *testing.T, answer <-chan testenv.Response) testenv.Response {
	t.Helper()
	select {
	case r := <-answer:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no answer to the payment request within 20 s")
		return testenv.Response{}
	}
}

// BenchmarkPayAgainstStripeMock measures whole payments (replica lookup, claim, PaymentIntent at
// stripe-mock, record with outbox, publish) through the HTTP API, 4 buyers at a time.
func BenchmarkPayAgainstStripeMock(b *testing.B) {
	base := testenv.StripeMock(b, stripeFixtures)
	h := newHarness(b, base)
	buyer := h.user(b)
	const orders = 400
	ids := make([]string, orders)
	for i := range ids {
		ids[i] = h.order(b, buyer, "19.99", time.Hour)
	}
	paid := 0
	for b.Loop() {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < orders; i += 4 {
					if r := h.pay(b, buyer, ids[i], pmVisa); r.Status != http.StatusCreated {
						b.Errorf("payment answered %d: %s", r.Status, r.Body)
					}
				}
			})
		}
		testenv.Wait(b, &wg, 5*time.Minute, "the 4 paying workers")
		paid += orders
		b.StopTimer()
		for i := range ids {
			ids[i] = h.order(b, buyer, "19.99", time.Hour)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(paid)/b.Elapsed().Seconds(), "payments/s")
}
