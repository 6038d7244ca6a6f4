// stripe_test.go: what Stripe's answers mean, with stripe-go parsing the stand-in's real JSON.
package main

import (
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/tickit/tickit/functions/internal/testenv"
)

// Stripe refusing an amount (amount_too_large, amount_too_small on amount) is a refusal for
// good: no other card or retry pays it, so the order is cancelled (payment.refused). A decline
// and an unknown PaymentMethod are not: another card may pay.
func TestStripesAmountRefusalIsPermanentAndADeclineIsNot(t *testing.T) {
	standIn := newStandIn(t)
	s := quietStripe(standIn.URL)
	for _, c := range []struct {
		name      string
		amount    int64
		pm        string
		permanent bool
	}{
		{"amount_too_large", 100_000_000, pmVisa, true},
		{"amount_too_small", 49, pmVisa, true},
		{"card declined", 1000, pmDeclined, false},
		{"unknown PaymentMethod", 1000, pmMissing, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			params := &stripe.PaymentIntentParams{Amount: stripe.Int64(c.amount), Currency: stripe.String("usd"),
				PaymentMethod: stripe.String(c.pm), Confirm: stripe.Bool(true)}
			params.Context = testenv.Context(t)
			pi, err := s.api.PaymentIntents.New(params)

			out := authorizeOutcome(pi, err)

			if out.authorized || out.refusal == nil || out.permanent != c.permanent {
				t.Fatalf("outcome %+v (Stripe said %v): want a refusal, permanent=%v", out, err, c.permanent)
			}
		})
	}
}
