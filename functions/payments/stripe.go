// stripe.go: the Stripe client: charge an attempt (a confirmed PaymentIntent), refund a payment,
// and what Stripe's answers mean for the claim.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/tickit/tickit/functions/internal/httpapi"
)

// stripeHTTPTimeout bounds one HTTP exchange with Stripe; chargeTimeout bounds all retries.
const stripeHTTPTimeout = 15 * time.Second

// Stripe talks to Stripe's API (or stripe-mock, or a test stand-in) through its own client.API,
// never the package-global one.
type Stripe struct {
	api *client.API
}

// NewStripe returns a client for key; base overrides the API's URL when not empty. retries is
// how often stripe-go retries a request that may not have arrived (safe: every POST carries an
// idempotency key).
func NewStripe(key, base string, retries int64, logger stripe.LeveledLoggerInterface) *Stripe {
	cfg := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: stripeHTTPTimeout},
		MaxNetworkRetries: stripe.Int64(retries),
		LeveledLogger:     logger,
	}
	if base != "" {
		cfg.URL = stripe.String(base)
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
	return &Stripe{api: client.New(key, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})}
}

// outcome is what Stripe made of one charge attempt.
type outcome struct {
	paid     bool
	stripeID string
	amount   int64
	// refusal, when not paid: Stripe answered and charged nothing (declined card, needs
	// action, invalid request). nil when not paid means the outcome is unknown (Stripe
	// unreachable, 5xx, timeout): the attempt may have charged, so only its own key may retry it.
	refusal *httpapi.Error
	err     error // the cause of an unknown outcome, for the log
}

// charge confirms a PaymentIntent for the payment's current attempt.
func (s *Stripe) charge(ctx context.Context, p Payment) outcome {
	params := &stripe.PaymentIntentParams{
		Amount:             stripe.Int64(p.Amount),
		Currency:           stripe.String(p.Currency),
		PaymentMethod:      stripe.String(p.Token),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}), // no redirect-based methods: no return_url
		Confirm:            stripe.Bool(true),
	}
	params.Context = ctx
	params.SetIdempotencyKey(chargeKey(p.OrderID, p.Attempt))
	params.AddMetadata("orderId", p.OrderID)
	params.AddMetadata("paymentId", p.ID.Hex())
	pi, err := s.api.PaymentIntents.New(params)
	return chargeOutcome(pi, err)
}

// chargeOutcome classifies Stripe's answer to a confirmed PaymentIntent.
func chargeOutcome(pi *stripe.PaymentIntent, err error) outcome {
	var se *stripe.Error
	switch {
	case err == nil && pi.Status == stripe.PaymentIntentStatusSucceeded:
		return outcome{paid: true, stripeID: pi.ID, amount: pi.Amount}
	case err == nil && pi.Status == stripe.PaymentIntentStatusRequiresAction:
		return outcome{stripeID: pi.ID, refusal: ErrNeedsAction}
	case err == nil:
		// Card PaymentIntents confirmed at once end succeeded, requires_action or in a card_error.
		return outcome{stripeID: pi.ID, refusal: httpapi.NewError(http.StatusPaymentRequired,
			fmt.Sprintf("The payment was not completed (Stripe status %s)", pi.Status))}
	case errors.As(err, &se) && se.Type == stripe.ErrorTypeCard:
		return outcome{refusal: httpapi.NewError(http.StatusPaymentRequired, se.Msg)}
	case errors.As(err, &se) && se.Type == stripe.ErrorTypeInvalidRequest && se.HTTPStatusCode < 500:
		if se.Param == "payment_method" {
			return outcome{refusal: httpapi.BadRequest(se.Msg, "token")}
		}
		return outcome{refusal: httpapi.BadRequest(se.Msg)}
	}
	// Network failures, timeouts, Stripe's 5xx, rate limits, auth and idempotency errors: the
	// caller may retry; the claim stays so that the retry uses this attempt's key.
	return outcome{err: err}
}

// refund refunds the payment's PaymentIntent once, whatever number of times it is called.
func (s *Stripe) refund(ctx context.Context, p Payment) (string, error) {
	params := &stripe.RefundParams{PaymentIntent: stripe.String(p.StripeID)}
	params.Context = ctx
	params.SetIdempotencyKey(refundKey(p.ID.Hex()))
	params.AddMetadata("orderId", p.OrderID)
	r, err := s.api.Refunds.New(params)
	var se *stripe.Error
	if errors.As(err, &se) && se.Code == stripe.ErrorCodeChargeAlreadyRefunded {
		return "", nil // refunded before, under another key (by hand in the dashboard)
	}
	if err != nil {
		return "", err
	}
	return r.ID, nil
}
