// payment_test.go: the payment rules without I/O.
package main

import (
	"errors"
	"testing"
	"time"

	"github.com/tickit/tickit/events"
)

func TestNextStep(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	open := Order{Status: events.StatusCreated, ExpiresAt: now.Add(time.Minute)}
	with := func(o Order, change func(*Order)) Order { change(&o); return o }
	payment := func(status string, claimedAgo time.Duration) *Payment {
		return &Payment{Status: status, ClaimedAt: now.Add(-claimedAgo), Token: pmVisa}
	}
	byOtherCard := func(p *Payment) *Payment { p.Token = pmMastercard; return p }
	released := func(status, reason string) *Payment {
		p := payment(status, 0)
		p.Reason = reason
		return p
	}
	cases := []struct {
		name    string
		order   Order
		payment *Payment
		step    step
		err     error
	}{
		{"open order, no payment", open, nil, stepFirstAttempt, nil},
		{"declined before", open, payment(paymentDeclined, 0), stepNewAttempt, nil},
		{"pending, fresh", open, payment(paymentPending, staleAfter-time.Second), 0, ErrInProgress},
		{"pending, abandoned", open, payment(paymentPending, staleAfter), stepResume, nil},
		{"succeeded: the same card is answered the payment", open, payment(paymentSucceeded, 0), stepAwait, nil},
		{"refunded: the same card is answered the payment", open, payment(paymentRefunded, 0), stepAwait, nil},
		{"authorized: the same card waits for the outcome", open, payment(paymentAuthorized, 0), stepAwait, nil},
		{"authorized, expired or cancelled meanwhile: orders decides, so wait", with(open, func(o *Order) { o.Status = events.StatusCancelled }), payment(paymentAuthorized, 0), stepAwait, nil},
		{"released: the same card is answered the payment", open, released(paymentReleased, events.RejectedCancelled), stepAwait, nil},
		{"complete", with(open, func(o *Order) { o.Status = events.StatusComplete }), nil, 0, ErrPaid},
		{"cancelled", with(open, func(o *Order) { o.Status = events.StatusCancelled }), nil, 0, ErrCancelled},
		{"expires now", with(open, func(o *Order) { o.ExpiresAt = now }), nil, 0, ErrExpired},
		{"expired and paid (by another card) says paid", with(open, func(o *Order) { o.ExpiresAt = now }), byOtherCard(payment(paymentSucceeded, 0)), 0, ErrPaid},
		{"expired with a fresh claim says expired", with(open, func(o *Order) { o.ExpiresAt = now }), payment(paymentPending, 0), 0, ErrExpired},
	}
	t.Run("authorized: another card is told a payment is in progress", func(t *testing.T) {
		if got, err := nextStep(open, payment(paymentAuthorized, 0), pmMastercard, now); got != 0 || !errors.Is(err, ErrInProgress) {
			t.Fatalf("nextStep = %v, %v; want in progress", got, err)
		}
	})
	// Another card is told what became of the order's payment.
	for _, c := range []struct {
		name    string
		payment *Payment
		err     error
	}{
		{"succeeded", payment(paymentSucceeded, 0), ErrPaid},
		{"refunded", payment(paymentRefunded, 0), ErrReleasedCancelled},
		{"released as cancelled", released(paymentReleased, events.RejectedCancelled), ErrReleasedCancelled},
		{"released as expired", released(paymentReleased, events.RejectedExpired), ErrReleasedExpired},
		{"released, another payment won", released(paymentReleased, events.RejectedPaid), ErrReleasedPaid},
	} {
		t.Run("another card, "+c.name, func(t *testing.T) {
			if got, err := nextStep(open, c.payment, pmMastercard, now); got != 0 || !errors.Is(err, c.err) {
				t.Fatalf("nextStep = %v, %v; want %v", got, err, c.err)
			}
		})
	}
	t.Run("refused: the refusal's message, for good", func(t *testing.T) {
		_, err := nextStep(open, released(paymentRefused, "no card pays this"), pmVisa, now)
		if err == nil || err.Error() != "no card pays this" {
			t.Fatalf("nextStep error %v, want the refusal", err)
		}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := nextStep(c.order, c.payment, pmVisa, now)
			if got != c.step || !errors.Is(err, c.err) {
				t.Fatalf("nextStep = %v, %v; want %v, %v", got, err, c.step, c.err)
			}
		})
	}
}

func TestOrderAppliesOnlyTheNextVersion(t *testing.T) {
	o := Order{Version: 3}
	for version, want := range map[int64]struct {
		apply bool
		err   error
	}{2: {false, nil}, 3: {false, nil}, 4: {true, nil}, 5: {false, errReplicaBehind}} {
		apply, err := o.applies(version)
		if apply != want.apply || !errors.Is(err, want.err) {
			t.Errorf("replica v3, event v%d: applies = %v, %v; want %v, %v", version, apply, err, want.apply, want.err)
		}
	}
}

func TestIdempotencyKeysNameTheOrderAttemptAndPayment(t *testing.T) {
	order := "65a1b2c3d4e5f60718293a4c"
	if got, want := chargeKey(order, 1), "tickit-order-"+order+"-attempt-1"; got != want {
		t.Fatalf("charge key %q, want %q", got, want)
	}
	if chargeKey(order, 1) == chargeKey(order, 2) {
		t.Fatal("two attempts share a charge key")
	}
	if chargeKey(order, 1) == chargeKey("65a1b2c3d4e5f60718293a4d", 1) {
		t.Fatal("two orders share a charge key")
	}
	keys := map[string]bool{refundKey(order): true, chargeKey(order, 1): true, captureKey(order): true, releaseKey(order): true}
	if len(keys) != 4 {
		t.Fatalf("refund, charge, capture and release keys collide: %v", keys)
	}
}
