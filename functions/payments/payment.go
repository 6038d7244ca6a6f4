// payment.go: the payment rules: the order replica, which orders can be paid, the claim that
// makes one request the only payer of an order, and the idempotency keys Stripe sees. No I/O.
package main

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
)

// Order is this function's replica of an order, built from order.* events.
type Order struct {
	ID        primitive.ObjectID `bson:"_id"`
	Version   int64              `bson:"version"`
	UserID    string             `bson:"userId"`
	Price     events.Price       `bson:"price"` // integer cents
	Status    string             `bson:"status"`
	ExpiresAt time.Time          `bson:"expiresAt"`
}

// Payment statuses. A payment document is also the claim on its order (one per order, a
// unique index on orderId): pending while one request talks to Stripe, declined when that
// attempt holds nothing (the next request may try again with another card), refused when no
// card can ever pay it (the order is cancelled: payment.refused). An authorized payment holds
// the amount on the card until orders decides: succeeded once captured (order.completed),
// released once its authorization is cancelled (payment.rejected), refunded for a payment
// captured before it was rejected (payments made before manual capture).
const (
	paymentPending    = "pending"
	paymentDeclined   = "declined"
	paymentRefused    = "refused"
	paymentAuthorized = "authorized"
	paymentSucceeded  = "succeeded"
	paymentReleased   = "released"
	paymentRefunded   = "refunded"
)

// currency is the one currency tickit sells in.
const currency = "usd"

// chargeTimeout bounds one attempt at Stripe, retries included. staleAfter is longer, so a
// pending claim older than that belongs to a request that died: it may be taken over.
// outcomeWait bounds how long POST /api/payments waits, after the authorization, for orders'
// decision (capture or release); past it the answer is 202 with status authorized and
// GET /api/payments shows the outcome later. It stays well inside the Service's 30 s timeout
// with a Stripe exchange before it.
const (
	chargeTimeout = 30 * time.Second
	staleAfter    = time.Minute
	outcomeWait   = 10 * time.Second
)

// waiting is how a payment request waits for orders' decision: at most outcome, reading the
// payment again after pauses growing from pollFirst to pollLongest, and at once when this
// process records the decision (decisions). pollLongest is how late a decision recorded by
// another replica may be seen.
type waiting struct{ outcome, pollFirst, pollLongest time.Duration }

// productionWaiting is how payments waits in production.
var productionWaiting = waiting{outcome: outcomeWait, pollFirst: 5 * time.Millisecond, pollLongest: time.Second}

// Payment is the order's payment: the claim, then the charge and its refund.
type Payment struct {
	ID        primitive.ObjectID `bson:"_id"`
	Version   int64              `bson:"version"`
	OrderID   string             `bson:"orderId"`
	UserID    string             `bson:"userId"`
	Status    string             `bson:"status"`
	Attempt   int64              `bson:"attempt"`   // numbers the charge attempts; part of the idempotency key
	ClaimedAt time.Time          `bson:"claimedAt"` // when the current attempt was claimed
	Token     string             `bson:"token"`     // the PaymentMethod of the current attempt
	Amount    int64              `bson:"amount"`    // cents
	Currency  string             `bson:"currency"`
	StripeID  string             `bson:"stripeId,omitempty"`
	RefundID  string             `bson:"refundId,omitempty"`
	// Reason says why a payment was released or refunded (an events.Rejected* reason) or
	// refused (the message the buyer was given).
	Reason string `bson:"reason,omitempty"`
}

// Errors the API answers with.
var (
	ErrOrderNotFound = httpapi.NewError(http.StatusNotFound, "Order not found")
	ErrCancelled     = httpapi.BadRequest("Order has been cancelled")
	ErrExpired       = httpapi.BadRequest("Order has expired")
	ErrPaid          = httpapi.BadRequest("Order has already been paid")
	ErrInProgress    = httpapi.BadRequest("A payment for this order is already in progress")
	ErrNeedsAction   = httpapi.NewError(http.StatusPaymentRequired,
		"This card needs the cardholder's authentication (3-D Secure), which this checkout cannot do: use another card")
	ErrStripeDown = httpapi.NewError(http.StatusServiceUnavailable,
		"The payment provider cannot be reached right now: please try again in a minute (you will not be charged twice)")
	// The answers to a payment that lost to a cancel or to the window's end: the card was
	// authorized, and the authorization released.
	ErrReleasedCancelled = httpapi.BadRequest("Order has been cancelled: your card was not charged (its authorization is released)")
	ErrReleasedExpired   = httpapi.BadRequest("Order has expired: your card was not charged (its authorization is released)")
	ErrReleasedPaid      = httpapi.BadRequest("Order has already been paid: your card was not charged (its authorization is released)")
)

// releasedError is the answer to a payment released for reason (an events.Rejected* reason).
func releasedError(reason string) error {
	switch reason {
	case events.RejectedExpired:
		return ErrReleasedExpired
	case events.RejectedPaid:
		return ErrReleasedPaid
	}
	return ErrReleasedCancelled
}

// errReplicaBehind says an order event arrived before the ones it builds on: the Broker
// delivers it again later.
var errReplicaBehind = errors.New("order replica is behind this event: retry")

// step is what a request may do with an order's payment.
type step int

const (
	stepFirstAttempt step = iota // no payment yet: insert the claim
	stepNewAttempt               // the last attempt was declined: claim attempt+1
	stepResume                   // a pending attempt was abandoned: finish it with its own key
	stepAwait                    // the order's payment is authorized: wait for orders' decision
)

// nextStep decides what a request paying order o with token may do at now, given the order's
// payment (nil when there is none yet). A request with the token of a payment that was
// authorized (the buyer asking again after a 202, or after a lost answer) gets that payment's
// outcome: awaited while orders decides, whatever the replica says, then succeeded or the
// release's reason. A request with another card is told a payment is in progress. Otherwise
// paid beats refused beats cancelled beats expired, so the message is the most useful one.
func nextStep(o Order, p *Payment, token string, now time.Time) (step, error) {
	switch {
	case p != nil && p.Token == token && (p.Status == paymentAuthorized || p.Status == paymentSucceeded ||
		p.Status == paymentReleased || p.Status == paymentRefunded):
		return stepAwait, nil
	case p != nil && p.Status == paymentAuthorized:
		return 0, ErrInProgress
	case o.Status == events.StatusComplete || p != nil && p.Status == paymentSucceeded:
		return 0, ErrPaid
	case p != nil && p.Status == paymentRefused:
		return 0, httpapi.BadRequest(p.Reason)
	case p != nil && (p.Status == paymentReleased || p.Status == paymentRefunded):
		return 0, releasedError(p.Reason)
	case o.Status == events.StatusCancelled:
		return 0, ErrCancelled
	case !now.Before(o.ExpiresAt):
		return 0, ErrExpired
	case p == nil:
		return stepFirstAttempt, nil
	case p.Status == paymentDeclined:
		return stepNewAttempt, nil
	case now.Sub(p.ClaimedAt) < staleAfter:
		return 0, ErrInProgress
	}
	return stepResume, nil
}

// applies says whether an order event of the given version is the replica's next change
// (apply it), already applied (false, nil) or ahead of a missing one (errReplicaBehind).
func (o Order) applies(version int64) (bool, error) {
	switch {
	case o.Version >= version:
		return false, nil
	case o.Version < version-1:
		return false, errReplicaBehind
	}
	return true, nil
}

// chargeKey is the Stripe idempotency key of one attempt to pay an order: every request that
// works on that attempt (a retry, a takeover after a crash) sends the same key and the same
// parameters, so Stripe charges at most once per attempt.
func chargeKey(orderID string, attempt int64) string {
	return "tickit-order-" + orderID + "-attempt-" + strconv.FormatInt(attempt, 10)
}

// refundKey is the Stripe idempotency key of a payment's refund: one refund per payment.
func refundKey(paymentID string) string { return "tickit-refund-" + paymentID }

// captureKey and releaseKey are the idempotency keys of a payment's capture and of its release
// (cancelling the PaymentIntent): one of each per payment.
func captureKey(paymentID string) string { return "tickit-capture-" + paymentID }
func releaseKey(paymentID string) string { return "tickit-release-" + paymentID }
