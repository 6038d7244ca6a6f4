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
// attempt charged nothing (the next request may try again with another card).
const (
	paymentPending   = "pending"
	paymentDeclined  = "declined"
	paymentSucceeded = "succeeded"
	paymentRefunded  = "refunded"
)

// currency is the one currency tickit sells in.
const currency = "usd"

// chargeTimeout bounds one attempt at Stripe, retries included. staleAfter is longer, so a
// pending claim older than that belongs to a request that died: it may be taken over.
const (
	chargeTimeout = 30 * time.Second
	staleAfter    = time.Minute
)

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
)

// errReplicaBehind says an order event arrived before the ones it builds on: the Broker
// delivers it again later.
var errReplicaBehind = errors.New("order replica is behind this event: retry")

// step is what a request may do with an order's payment.
type step int

const (
	stepFirstAttempt step = iota // no payment yet: insert the claim
	stepNewAttempt               // the last attempt was declined: claim attempt+1
	stepResume                   // a pending attempt was abandoned: finish it with its own key
)

// nextStep decides what a request paying order o may do at now, given the order's payment
// (nil when there is none yet). Paid beats cancelled beats expired, so the message is the
// most useful one.
func nextStep(o Order, p *Payment, now time.Time) (step, error) {
	switch {
	case o.Status == events.StatusComplete || p != nil && p.Status == paymentSucceeded:
		return 0, ErrPaid
	case o.Status == events.StatusCancelled || p != nil && p.Status == paymentRefunded:
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
