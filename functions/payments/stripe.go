// stripe.go: the Stripe client: authorize an attempt (a confirmed PaymentIntent with manual
// capture), capture or release it once orders decided, refund a captured one, and what Stripe's
// answers mean for the claim.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/outbound"
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
		HTTPClient:        &http.Client{Timeout: stripeHTTPTimeout, Transport: outbound.Transport()},
		MaxNetworkRetries: stripe.Int64(retries),
		LeveledLogger:     logger,
	}
	if base != "" {
		cfg.URL = stripe.String(base)
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
	return &Stripe{api: client.New(key, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})}
}

// outcome is what Stripe made of one authorization attempt.
type outcome struct {
	authorized bool // the card is authorized for amount: held, not charged until capture
	stripeID   string
	amount     int64
	// refusal, when not authorized: Stripe answered and holds nothing (declined card, needs
	// action, invalid request). nil when not authorized means the outcome is unknown (Stripe
	// unreachable, 5xx, timeout): the attempt may have authorized, so only its own key may
	// retry it.
	refusal *httpapi.Error
	// permanent: the refusal holds for any card and any retry (an amount or a currency Stripe
	// does not charge): the order can never be paid.
	permanent bool
	err       error // the cause of an unknown outcome, for the log
}

// authorize confirms a PaymentIntent for the payment's current attempt with capture_method
// manual: Stripe authorizes the card for the amount and takes nothing until capture (issue 17:
// a payment that loses a race with a cancel or the window's end must never charge the card). An
// amount Stripe never charges is refused here, permanently, without asking Stripe.
func (s *Stripe) authorize(ctx context.Context, p Payment) outcome {
	if !events.Price(p.Amount).Chargeable() {
		return outcome{refusal: errAmount(events.Price(p.Amount)), permanent: true}
	}
	params := &stripe.PaymentIntentParams{
		Amount:             stripe.Int64(p.Amount),
		Currency:           stripe.String(p.Currency),
		PaymentMethod:      stripe.String(p.Token),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}), // no redirect-based methods: no return_url
		CaptureMethod:      stripe.String(string(stripe.PaymentIntentCaptureMethodManual)),
		Confirm:            stripe.Bool(true),
	}
	params.Context = ctx
	params.SetIdempotencyKey(chargeKey(p.OrderID, p.Attempt))
	params.AddMetadata("orderId", p.OrderID)
	params.AddMetadata("paymentId", p.ID.Hex())
	pi, err := s.api.PaymentIntents.New(params)
	return authorizeOutcome(pi, err)
}

// errAmount is the permanent refusal of a price Stripe does not charge.
func errAmount(p events.Price) *httpapi.Error {
	return httpapi.BadRequest(fmt.Sprintf("This ticket's price (%s usd) cannot be paid: Stripe charges from %s to %s usd. "+
		"The order is cancelled and nothing was charged", p, events.MinPrice, events.MaxPrice))
}

// authorizeOutcome classifies Stripe's answer to a confirmed manual-capture PaymentIntent.
func authorizeOutcome(pi *stripe.PaymentIntent, err error) outcome {
	var se *stripe.Error
	switch {
	case err == nil && (pi.Status == stripe.PaymentIntentStatusRequiresCapture || pi.Status == stripe.PaymentIntentStatusSucceeded):
		// succeeded: captured already (not with capture_method manual, but it holds the money
		// all the same); capture and release below accept it.
		return outcome{authorized: true, stripeID: pi.ID, amount: pi.Amount}
	case err == nil && pi.Status == stripe.PaymentIntentStatusRequiresAction:
		return outcome{stripeID: pi.ID, refusal: ErrNeedsAction}
	case err == nil:
		// Card PaymentIntents confirmed at once end requires_capture, requires_action or in a card_error.
		return outcome{stripeID: pi.ID, refusal: httpapi.NewError(http.StatusPaymentRequired,
			fmt.Sprintf("The payment was not completed (Stripe status %s)", pi.Status))}
	case errors.As(err, &se) && se.Type == stripe.ErrorTypeCard:
		return outcome{refusal: httpapi.NewError(http.StatusPaymentRequired, se.Msg)}
	case errors.As(err, &se) && se.Type == stripe.ErrorTypeInvalidRequest && se.HTTPStatusCode < 500:
		switch {
		case se.Param == "payment_method":
			return outcome{refusal: httpapi.BadRequest(se.Msg, "token")}
		case se.Param == "amount" || se.Param == "currency" ||
			se.Code == stripe.ErrorCodeAmountTooLarge || se.Code == stripe.ErrorCodeAmountTooSmall:
			return outcome{refusal: httpapi.BadRequest(se.Msg + ". The order is cancelled and nothing was charged"), permanent: true}
		}
		return outcome{refusal: httpapi.BadRequest(se.Msg)}
	}
	// Network failures, timeouts, Stripe's 5xx, rate limits, auth and idempotency errors: the
	// caller may retry; the claim stays so that the retry uses this attempt's key.
	return outcome{err: err}
}

// capture takes the authorized amount of the payment's PaymentIntent, once (its own key),
// after orders completed the order. A PaymentIntent captured before (its status succeeded)
// counts as captured.
func (s *Stripe) capture(ctx context.Context, p Payment) error {
	params := &stripe.PaymentIntentCaptureParams{}
	params.Context = ctx
	params.SetIdempotencyKey(captureKey(p.ID.Hex()))
	_, err := s.api.PaymentIntents.Capture(p.StripeID, params)
	if unexpectedState(err, stripe.PaymentIntentStatusSucceeded) {
		return nil
	}
	return err
}

// release cancels the payment's PaymentIntent, which releases the authorization: the buyer is
// charged nothing. A PaymentIntent cancelled before counts as released; one that was captured
// (status succeeded) cannot be cancelled and is refunded instead (refunded is then true).
func (s *Stripe) release(ctx context.Context, p Payment) (refundID string, refunded bool, err error) {
	params := &stripe.PaymentIntentCancelParams{CancellationReason: stripe.String("abandoned")}
	params.Context = ctx
	params.SetIdempotencyKey(releaseKey(p.ID.Hex()))
	_, err = s.api.PaymentIntents.Cancel(p.StripeID, params)
	switch {
	case err == nil, unexpectedState(err, stripe.PaymentIntentStatusCanceled):
		return "", false, nil
	case unexpectedState(err, stripe.PaymentIntentStatusSucceeded):
		refundID, err = s.refund(ctx, p)
		return refundID, err == nil, err
	}
	return "", false, err
}

// unexpectedState reports Stripe's answer that the PaymentIntent is already in status.
func unexpectedState(err error, status stripe.PaymentIntentStatus) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.Code == stripe.ErrorCodePaymentIntentUnexpectedState &&
		se.PaymentIntent != nil && se.PaymentIntent.Status == status
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
