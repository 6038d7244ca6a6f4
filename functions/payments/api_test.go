// api_test.go: the REST routes, every failure case, and the no-double-charge guarantees,
// against the Stripe stand-in.
package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestPayRejectsBadRequests(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "10", time.Hour)

	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"no JSON body", nil, http.StatusUnsupportedMediaType, ""},
		{"not an object", "[]", http.StatusBadRequest, ""},
		{"malformed JSON", `{"orderId":`, http.StatusBadRequest, ""},
		{"missing orderId", map[string]string{"token": pmVisa}, http.StatusBadRequest, "orderId"},
		{"malformed orderId", map[string]string{"orderId": "123", "token": pmVisa}, http.StatusBadRequest, "orderId"},
		{"upper-case orderId", map[string]string{"orderId": strings.ToUpper(orderID), "token": pmVisa}, http.StatusBadRequest, "orderId"},
		{"orderId not a string", map[string]any{"orderId": 7, "token": pmVisa}, http.StatusBadRequest, "orderId"},
		{"missing token", map[string]string{"orderId": orderID}, http.StatusBadRequest, "token"},
		{"token not a PaymentMethod id", map[string]string{"orderId": orderID, "token": "tok_<script>"}, http.StatusBadRequest, "token"},
		{"token too long", map[string]string{"orderId": orderID, "token": "pm_" + strings.Repeat("a", 201)}, http.StatusBadRequest, "token"},
		{"unknown field", map[string]string{"orderId": orderID, "token": pmVisa, "amount": "1"}, http.StatusBadRequest, "amount"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testenv.Call(t, http.MethodPost, h.URL+"/api/payments", c.body, buyer.Token)
			expectStatus(t, r, c.status)
			if errs := r.Errors(t).Errors; c.field != "" && errs[0].Field != c.field {
				t.Fatalf("error names field %q, want %q: %s", errs[0].Field, c.field, r.Body)
			}
		})
	}
	t.Run("both fields missing are both reported", func(t *testing.T) {
		r := testenv.Call(t, http.MethodPost, h.URL+"/api/payments", map[string]string{}, buyer.Token)
		expectStatus(t, r, http.StatusBadRequest)
		if errs := r.Errors(t).Errors; len(errs) != 2 || errs[0].Field != "orderId" || errs[1].Field != "token" {
			t.Fatalf("want one error per field: %s", r.Body)
		}
	})
	if n := stripe.requestCount(); n != 0 {
		t.Fatalf("bad requests reached Stripe: %d requests", n)
	}
}

func TestPayRefusesWhatCannotBePaid(t *testing.T) {
	testenv.OnEachStore(t, testPayRefusesWhatCannotBePaid)
}

func testPayRefusesWhatCannotBePaid(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)

	t.Run("anonymous: 401", func(t *testing.T) {
		expectStatus(t, h.pay(t, testenv.User{}, h.order(t, buyer, "10", time.Hour), pmVisa), http.StatusUnauthorized)
	})
	t.Run("unknown order: 404", func(t *testing.T) {
		expectStatus(t, h.pay(t, buyer, primitive.NewObjectID().Hex(), pmVisa), http.StatusNotFound)
	})
	t.Run("another user's order: 403", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		expectStatus(t, h.pay(t, h.user(t), orderID, pmVisa), http.StatusForbidden)
	})
	t.Run("cancelled order: 400", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		h.send(t, events.New(events.OrderCancelled{ID: orderID, Version: 1, Ticket: events.OrderTicket{ID: primitive.NewObjectID().Hex()}}))
		if msg := expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusBadRequest); msg != ErrCancelled.Error() {
			t.Fatalf("message %q, want %q", msg, ErrCancelled.Error())
		}
	})
	t.Run("expired order, before its cancel event arrives: 400", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", -time.Second)
		if msg := expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusBadRequest); msg != ErrExpired.Error() {
			t.Fatalf("message %q, want %q", msg, ErrExpired.Error())
		}
	})
	t.Run("completed order: 400 already paid", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		h.send(t, events.New(events.OrderCompleted{ID: orderID, Version: 1, UserID: buyer.ID, UserEmail: buyer.Email,
			Ticket: events.OrderTicket{ID: primitive.NewObjectID().Hex(), Title: "t", Price: 1000}, PaymentID: primitive.NewObjectID().Hex()}))
		if msg := expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusBadRequest); msg != ErrPaid.Error() {
			t.Fatalf("message %q, want %q", msg, ErrPaid.Error())
		}
	})
	t.Run("paid order, before order.completed arrives: 400 already paid", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusCreated)
		if msg := expectStatus(t, h.pay(t, buyer, orderID, pmMastercard), http.StatusBadRequest); msg != ErrPaid.Error() {
			t.Fatalf("message %q, want %q", msg, ErrPaid.Error())
		}
	})
	t.Run("a payment in progress: 400", func(t *testing.T) {
		orderID := h.order(t, buyer, "10", time.Hour)
		abandon(t, h, orderID, buyer.ID, 0) // claimed just now: another request is at Stripe
		if msg := expectStatus(t, h.pay(t, buyer, orderID, pmMastercard), http.StatusBadRequest); msg != ErrInProgress.Error() {
			t.Fatalf("message %q, want %q", msg, ErrInProgress.Error())
		}
	})
	if charges, _ := stripe.counts(); charges != 1 {
		t.Fatalf("Stripe charged %d times, want 1 (the one paid order)", charges)
	}
}

func TestDeclinedCardAnswers402AndAnotherCardMayPay(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "42.50", time.Hour)

	for token, want := range map[string]string{pmDeclined: "Your card was declined.", pmInsufficientFund: "Your card has insufficient funds."} {
		if msg := expectStatus(t, h.pay(t, buyer, orderID, token), http.StatusPaymentRequired); msg != want {
			t.Fatalf("%s: message %q, want Stripe's %q", token, msg, want)
		}
		if p := h.paymentOf(t, orderID); p.Status != paymentDeclined {
			t.Fatalf("after a decline the claim is %q, want released (declined)", p.Status)
		}
	}
	expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusCreated)

	p := h.paymentOf(t, orderID)
	if p.Status != paymentSucceeded || p.Attempt != 3 || p.Amount != 4250 {
		t.Fatalf("payment %+v: want succeeded on attempt 3 for 4250 cents", p)
	}
	if charges, _ := stripe.counts(); charges != 1 {
		t.Fatalf("%d charges, want 1", charges)
	}
	if evs := h.sink.WaitFor(t, events.TypePaymentCreated, 1); len(evs) != 1 {
		t.Fatalf("%d payment.created events, want 1", len(evs))
	}
}

func TestPaymentNeedingActionAnswers402(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "10", time.Hour)

	msg := expectStatus(t, h.pay(t, buyer, orderID, pmAuthRequired), http.StatusPaymentRequired)

	if msg != ErrNeedsAction.Error() {
		t.Fatalf("message %q, want %q", msg, ErrNeedsAction.Error())
	}
	if p := h.paymentOf(t, orderID); p.Status != paymentDeclined {
		t.Fatalf("claim %q after requires_action, want released", p.Status)
	}
	expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusCreated)
}

func TestUnknownPaymentMethodAnswers400OnToken(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "10", time.Hour)

	r := h.pay(t, buyer, orderID, pmMissing)

	expectStatus(t, r, http.StatusBadRequest)
	if e := r.Errors(t).Errors[0]; e.Field != "token" || !strings.Contains(e.Message, "No such PaymentMethod") {
		t.Fatalf("want Stripe's message on field token: %s", r.Body)
	}
}

func TestStripeUnreachableAnswers503AndTheRetryPaysOnce(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "10", time.Hour)
	stripe.setMode("down")

	r := h.pay(t, buyer, orderID, pmVisa)

	if msg := expectStatus(t, r, http.StatusServiceUnavailable); msg != ErrStripeDown.Error() {
		t.Fatalf("message %q, want %q", msg, ErrStripeDown.Error())
	}
	if p := h.paymentOf(t, orderID); p.Status != paymentPending || p.Attempt != 1 {
		t.Fatalf("claim %+v: want attempt 1 kept pending for a replay", p)
	}
	stripe.setMode("")
	expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusCreated)
	if charges, _ := stripe.counts(); charges != 1 {
		t.Fatalf("%d charges, want 1", charges)
	}
}

func TestLostAnswerIsReplayedWithTheSameKeyNotChargedAgain(t *testing.T) {
	testenv.OnEachStore(t, testLostAnswerIsReplayedWithTheSameKeyNotChargedAgain)
}

func testLostAnswerIsReplayedWithTheSameKeyNotChargedAgain(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "10", time.Hour)
	stripe.setMode("lose-answer") // Stripe charges, the answer never arrives

	expectStatus(t, h.pay(t, buyer, orderID, pmVisa), http.StatusServiceUnavailable)
	stripe.setMode("")
	// The buyer tries again, even with another card: the charge that happened is the payment.
	r := h.pay(t, buyer, orderID, pmMastercard)

	expectStatus(t, r, http.StatusCreated)
	if charges, _ := stripe.counts(); charges != 1 {
		t.Fatalf("%d charges, want 1", charges)
	}
	if p := h.paymentOf(t, orderID); p.Status != paymentSucceeded || p.Token != pmVisa || p.Attempt != 1 {
		t.Fatalf("payment %+v: want attempt 1 with the card Stripe charged", p)
	}
}

// abandon stores a pending claim of attempt 1 made claimedAgo (long ago: as a request that died
// leaves it).
func abandon(t *testing.T, h *harness, orderID, userID string, claimedAgo time.Duration) Payment {
	t.Helper()
	p := Payment{ID: primitive.NewObjectID(), OrderID: orderID, UserID: userID, Status: paymentPending,
		Attempt: 1, ClaimedAt: time.Now().Add(-claimedAgo), Token: pmVisa, Amount: 1000, Currency: currency}
	if err := h.store.insertPayment(testenv.Context(t), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAbandonedClaimIsFinishedWithItsOwnKey(t *testing.T) {
	t.Run("by the buyer's next request", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		buyer := h.user(t)
		orderID := h.order(t, buyer, "10", time.Hour)
		claim := abandon(t, h, orderID, buyer.ID, 2*staleAfter)
		// The dead request had reached Stripe: its charge exists under the attempt's key.
		if out := quietStripe(stripe.URL).authorize(testenv.Context(t), claim); !out.authorized {
			t.Fatalf("arranging the earlier charge: %+v", out)
		}

		expectStatus(t, h.pay(t, buyer, orderID, pmMastercard), http.StatusCreated)

		if charges, _ := stripe.counts(); charges != 1 {
			t.Fatalf("%d charges, want 1", charges)
		}
		h.sink.WaitFor(t, events.TypePaymentCreated, 1)
	})
	t.Run("by the background sweep when nobody comes back", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		buyer := h.user(t)
		orderID := h.order(t, buyer, "10", time.Hour)
		abandon(t, h, orderID, buyer.ID, 2*staleAfter)
		fresh := h.order(t, buyer, "10", time.Hour)
		abandon(t, h, fresh, buyer.ID, 0) // still being worked on: left alone

		h.fn.Background(testenv.Context(t))

		// The sweep authorizes and publishes payment.created; orders completes, payments captures.
		h.waitStatus(t, orderID, paymentSucceeded)
		if p := h.paymentOf(t, fresh); p.Status != paymentPending {
			t.Fatalf("fresh claim is %q, want left pending", p.Status)
		}
		if charges, _ := stripe.counts(); charges != 1 {
			t.Fatalf("%d charges, want 1", charges)
		}
		if ev := paymentCreated(t, h.sink.WaitFor(t, events.TypePaymentCreated, 1)[0]); ev.OrderID != orderID {
			t.Fatalf("payment.created for %s, want %s", ev.OrderID, orderID)
		}
	})
	t.Run("a declined replay lets the buyer's own card pay", func(t *testing.T) {
		stripe := newStandIn(t)
		h := newHarness(t, stripe.URL)
		buyer := h.user(t)
		orderID := h.order(t, buyer, "10", time.Hour)
		claim := abandon(t, h, orderID, buyer.ID, 2*staleAfter)
		claim.Token = pmDeclined
		if err := h.store.updatePayment(testenv.Context(t), claim, bson.M{"$set": bson.M{"token": pmDeclined}}); err != nil {
			t.Fatal(err)
		}

		expectStatus(t, h.pay(t, buyer, orderID, pmMastercard), http.StatusCreated)

		if p := h.paymentOf(t, orderID); p.Attempt != 2 || p.Token != pmMastercard {
			t.Fatalf("payment %+v: want attempt 2 with the buyer's card", p)
		}
	})
}

func TestConcurrentPaymentsForOneOrderChargeOnce(t *testing.T) {
	testenv.OnEachAtomicStore(t, testConcurrentPaymentsForOneOrderChargeOnce)
}

func testConcurrentPaymentsForOneOrderChargeOnce(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "19.99", time.Hour)

	const n = 20
	statuses := make([]testenv.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		token := pmVisa
		if i%2 == 1 {
			token = pmMastercard
		}
		wg.Go(func() { statuses[i] = h.pay(t, buyer, orderID, token) })
	}
	testenv.Wait(t, &wg, 5*time.Minute, "the concurrent payments")

	// Requests with the winner's card that arrive once it is authorized wait for its outcome
	// and answer it (the same payment); every other one is told it lost.
	paid := map[string]bool{}
	for _, r := range statuses {
		switch r.Status {
		case http.StatusCreated:
			var p paymentView
			r.JSON(t, &p)
			paid[p.ID] = true
		case http.StatusBadRequest:
			if msg := r.Errors(t).Errors[0].Message; msg != ErrInProgress.Error() && msg != ErrPaid.Error() {
				t.Errorf("loser's message %q, want in progress or already paid", msg)
			}
		default:
			t.Errorf("status %d: %s", r.Status, r.Body)
		}
	}
	if len(paid) != 1 {
		t.Fatalf("201 answers name %d payments, want exactly 1", len(paid))
	}
	if held, _ := stripe.holds(); held != 1 {
		t.Fatalf("Stripe authorized %d PaymentIntents, want 1", held)
	}
	if charges, _ := stripe.counts(); charges != 1 {
		t.Fatalf("Stripe charged %d times, want 1", charges)
	}
	payments, err := h.store.paymentsOf(testenv.Context(t), buyer.ID)
	if err != nil || len(payments) != 1 || payments[0].Amount != 1999 {
		t.Fatalf("payments %+v (err %v): want one of 1999 cents", payments, err)
	}
	if evs := h.sink.WaitFor(t, events.TypePaymentCreated, 1); len(evs) != 1 {
		t.Fatalf("%d payment.created events, want 1", len(evs))
	}
}

func TestListShowsTheCallersPayments(t *testing.T) {
	testenv.OnEachStore(t, testListShowsTheCallersPayments)
}

func testListShowsTheCallersPayments(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer, other := h.user(t), h.user(t)
	first := h.order(t, buyer, "10", time.Hour)
	second := h.order(t, buyer, "12.34", time.Hour)
	declined := h.order(t, buyer, "5", time.Hour)
	theirs := h.order(t, other, "99", time.Hour)
	expectStatus(t, h.pay(t, buyer, first, pmVisa), http.StatusCreated)
	expectStatus(t, h.pay(t, buyer, second, pmVisa), http.StatusCreated)
	expectStatus(t, h.pay(t, buyer, declined, pmDeclined), http.StatusPaymentRequired)
	expectStatus(t, h.pay(t, other, theirs, pmVisa), http.StatusCreated)

	r := testenv.Call(t, http.MethodGet, h.URL+"/api/payments", nil, buyer.Token)

	expectStatus(t, r, http.StatusOK)
	var got []paymentView
	r.JSON(t, &got)
	if len(got) != 2 || got[0].OrderID != second || got[1].OrderID != first || got[0].Amount != 1234 || got[0].Status != paymentSucceeded {
		t.Fatalf("want the caller's two payments, newest first: %s", r.Body)
	}
	expectStatus(t, testenv.Call(t, http.MethodGet, h.URL+"/api/payments", nil, ""), http.StatusUnauthorized)
	r = testenv.Call(t, http.MethodGet, h.URL+"/api/payments", nil, h.user(t).Token)
	if expectStatus(t, r, http.StatusOK); strings.TrimSpace(string(r.Body)) != "[]" {
		t.Fatalf("a user without payments gets %s, want []", r.Body)
	}
}

func TestTheSameRequestAgainIsAnsweredItsOutcome(t *testing.T) {
	stripe := newStandIn(t)
	h := newHarness(t, stripe.URL)
	buyer := h.user(t)
	orderID := h.order(t, buyer, "10", time.Hour)
	var first, again paymentView
	h.pay(t, buyer, orderID, pmVisa).JSON(t, &first)

	r := h.pay(t, buyer, orderID, pmVisa) // the buyer's answer was lost: the request is sent again

	expectStatus(t, r, http.StatusCreated)
	if r.JSON(t, &again); again != first || first.Status != paymentSucceeded {
		t.Fatalf("second answer %+v, want the first %+v (succeeded)", again, first)
	}
	if held, _ := stripe.holds(); held != 1 {
		t.Fatalf("%d authorizations, want 1", held)
	}
}
