// order.go: the order and its ticket as orders sees them, and the rules about them: statuses,
// expiry, the one transition an order makes, when a reservation may be taken, and what a
// payment or a cancel request does. No HTTP and no database here.
package main

import (
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
)

// Statuses: created -> cancelled | complete, nothing else, ever.
const (
	StatusCreated   = events.StatusCreated
	StatusCancelled = events.StatusCancelled
	StatusComplete  = events.StatusComplete
)

// Errors the API answers with.
var (
	ErrReserved       = httpapi.BadRequest("Ticket is already reserved", "ticketId")
	ErrOwnTicket      = httpapi.BadRequest("You cannot order your own ticket", "ticketId")
	ErrCancelComplete = httpapi.BadRequest("A complete order cannot be cancelled")
	ErrTicketID       = httpapi.BadRequest("ticketId must be a 24-hex ticket id", "ticketId")
	ErrOrderID        = httpapi.BadRequest("The order id must be a 24-hex id", "id")
	ErrTicketNotFound = httpapi.NewError(http.StatusNotFound, "Ticket not found")
	ErrOrderNotFound  = httpapi.NewError(http.StatusNotFound, "Order not found")
	ErrNoEmail        = httpapi.NewError(http.StatusUnauthorized, "The session names no email address: sign in again")
)

// Ticket is the replica of a listed ticket. Title, price and version follow the tickets
// function's events; ReservedBy is orders' own: the order holding the ticket, changed only by
// a compare-and-set. ReservedUntil is that order's expiresAt, written by the same CAS, so a
// reservation whose order document never got written still ends.
type Ticket struct {
	ID            primitive.ObjectID  `bson:"_id"`
	Title         string              `bson:"title"`
	Price         events.Price        `bson:"price"`
	UserID        string              `bson:"userId"`
	Version       int64               `bson:"version"`
	ReservedBy    *primitive.ObjectID `bson:"reservedBy"`
	ReservedUntil time.Time           `bson:"reservedUntil"`
}

// Order is one buyer's claim on one ticket.
type Order struct {
	ID        primitive.ObjectID `bson:"_id"`
	Status    string             `bson:"status"`
	UserID    string             `bson:"userId"`
	UserEmail string             `bson:"userEmail"`
	CreatedAt time.Time          `bson:"createdAt"`
	ExpiresAt time.Time          `bson:"expiresAt"`
	Version   int64              `bson:"version"`
	Ticket    events.OrderTicket `bson:"ticket"`
	PaymentID string             `bson:"paymentId,omitempty"`
	// Confirmed: tickets has reserved the ticket for this order (a ticket.updated naming it),
	// so no edit of the seller's can contradict the order any more: only then may it complete.
	Confirmed bool `bson:"confirmed,omitempty"`
	// CancelReason says why a cancelled order was cancelled (Reason* below).
	CancelReason string `bson:"cancelReason,omitempty"`
}

// Why an order was cancelled (Order.CancelReason, "cancelReason" in the API).
const (
	ReasonBuyer          = "buyer"           // DELETE /api/orders/:id
	ReasonExpired        = "expired"         // its window ended unpaid
	ReasonTicketChanged  = "ticket-changed"  // the seller changed the ticket before tickets saw the order (reservation.refused)
	ReasonPaymentRefused = "payment-refused" // no card can ever pay it (payment.refused)
)

// Shown is the order as it is true at now: a created order past its window is cancelled for
// every decision (it cannot be paid, its ticket can be taken), so the API says so before the
// expiration event makes it official (issue 17).
func (o Order) Shown(now time.Time) Order {
	if o.Expired(now) {
		o.Status, o.CancelReason = StatusCancelled, ReasonExpired
	}
	return o
}

// Expired reports an order that still holds its ticket on paper but whose time is over: it
// counts as cancelled for every decision, before the expiration event makes it official.
func (o Order) Expired(now time.Time) bool {
	return o.Status == StatusCreated && !now.Before(o.ExpiresAt)
}

// Payable reports whether a payment may complete the order now.
func (o Order) Payable(now time.Time) bool {
	return o.Status == StatusCreated && now.Before(o.ExpiresAt)
}

// CanBecome reports whether the order may move to status: only a created order moves, and
// only to cancelled or complete.
func (o Order) CanBecome(status string) bool {
	return o.Status == StatusCreated && (status == StatusCancelled || status == StatusComplete)
}

// Free reports whether a new order may take the ticket from its current holder. holder is the
// order named by ReservedBy, nil when no such order exists (its insert failed or never came).
func (t Ticket) Free(holder *Order, now time.Time) bool {
	switch {
	case t.ReservedBy == nil:
		return true
	case holder == nil:
		// The reserving request crashed between its CAS and its insert, or is still between
		// them: the reservation ends when that order would have expired.
		return !now.Before(t.ReservedUntil)
	default:
		return holder.Status == StatusCancelled || holder.Expired(now)
	}
}

// PaymentOutcome is what a payment.created event does to its order.
type PaymentOutcome int

const (
	// Complete: the order is paid now.
	Complete PaymentOutcome = iota
	// AlreadyPaid: this very payment completed the order before (a repeat delivery).
	AlreadyPaid
	// Reject: the order cannot take this payment; payments releases it.
	Reject
	// ExpireAndReject: the order's time ran out unnoticed; cancel it, then reject.
	ExpireAndReject
	// AwaitConfirmation: payable, but tickets has not confirmed the reservation yet (nor
	// refused it): completing now could sell at terms the seller has just changed. Retried.
	AwaitConfirmation
)

// OnPayment decides what payment paymentID does to the order at now.
func (o Order) OnPayment(paymentID string, now time.Time) PaymentOutcome {
	switch {
	case o.Payable(now) && !o.Confirmed:
		return AwaitConfirmation
	case o.Payable(now):
		return Complete
	case o.Status == StatusComplete && o.PaymentID == paymentID:
		return AlreadyPaid
	case o.Expired(now):
		return ExpireAndReject
	default:
		return Reject
	}
}

// RejectReason is why the order rejects a payment it cannot take (events.Rejected*).
func (o Order) RejectReason(now time.Time) string {
	o = o.Shown(now)
	switch {
	case o.Status == StatusComplete:
		return events.RejectedPaid
	case o.CancelReason == ReasonExpired:
		return events.RejectedExpired
	}
	return events.RejectedCancelled
}

// CancelOutcome is what the buyer's cancel request does to the order.
type CancelOutcome int

const (
	// Cancel: the order is cancelled now and its ticket released.
	Cancel CancelOutcome = iota
	// AlreadyCancelled: nothing to do, and nothing to publish.
	AlreadyCancelled
)

// OnCancel decides what the buyer's cancel request does; a complete order refuses it.
func (o Order) OnCancel() (CancelOutcome, error) {
	switch o.Status {
	case StatusCreated:
		return Cancel, nil
	case StatusCancelled:
		return AlreadyCancelled, nil
	default:
		return 0, ErrCancelComplete
	}
}
