package events

import (
	"errors"
	"regexp"
	"strings"
	"time"
)

// Payload is the data of one event type. Each payload names its type and its subject (the
// entity the event is about) and validates itself.
type Payload interface {
	Type() string
	Subject() string
	Validate() error
}

// TicketCreated: a seller listed a ticket.
type TicketCreated struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Title   string `json:"title"`
	Price   Price  `json:"price"`
	UserID  string `json:"userId"`
}

// TicketUpdated: a ticket changed (edited, reserved, released or sold). OrderID is the order
// holding it, empty when it is free.
type TicketUpdated struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Title   string `json:"title"`
	Price   Price  `json:"price"`
	UserID  string `json:"userId"`
	OrderID string `json:"orderId,omitempty"`
}

// OrderTicket is the ticket as an order sees it.
type OrderTicket struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Price Price  `json:"price,omitempty"`
}

// OrderCreated: a buyer reserved a ticket until ExpiresAt.
type OrderCreated struct {
	ID        string      `json:"id"`
	Version   int64       `json:"version"`
	Status    string      `json:"status"`
	UserID    string      `json:"userId"`
	UserEmail string      `json:"userEmail"`
	ExpiresAt time.Time   `json:"expiresAt"`
	Ticket    OrderTicket `json:"ticket"`
}

// OrderCancelled: the order was cancelled (by its buyer, by expiry, or by a takeover).
type OrderCancelled struct {
	ID      string      `json:"id"`
	Version int64       `json:"version"`
	Ticket  OrderTicket `json:"ticket"`
}

// OrderCompleted: the order was paid; the ticket is sold.
type OrderCompleted struct {
	ID        string      `json:"id"`
	Version   int64       `json:"version"`
	UserID    string      `json:"userId"`
	UserEmail string      `json:"userEmail"`
	Ticket    OrderTicket `json:"ticket"`
	PaymentID string      `json:"paymentId"`
}

// ExpirationCompleted: the order's reservation time is over.
type ExpirationCompleted struct {
	OrderID string `json:"orderId"`
}

// PaymentCreated: Stripe authorized the buyer's card for the order's amount (a PaymentIntent
// with capture_method manual, status requires_capture): the money is held, not taken. payments
// captures it once orders completes the order (order.completed names this payment), and
// releases it when orders answers payment.rejected. So a payment that loses a race with a
// cancel or the window's end never charges the card.
type PaymentCreated struct {
	ID       string `json:"id"`
	OrderID  string `json:"orderId"`
	StripeID string `json:"stripeId"`
	Amount   int64  `json:"amount"` // cents
	Currency string `json:"currency"`
}

// PaymentRejected: a payment arrived for an order that was no longer payable; payments
// releases its authorization (or refunds it, had it been captured). Reason says why, one of
// the Rejected* constants (empty from publishers older than the field).
type PaymentRejected struct {
	OrderID   string `json:"orderId"`
	PaymentID string `json:"paymentId"`
	Reason    string `json:"reason,omitempty"`
}

// Why orders rejects a payment (PaymentRejected.Reason).
const (
	RejectedCancelled = "cancelled" // the order was cancelled (by its buyer, or refused)
	RejectedExpired   = "expired"   // the order's window ended before the payment reached orders
	RejectedPaid      = "paid"      // another payment completed the order
	RejectedUnknown   = "unknown"   // orders knows no such order
)

// PaymentRefused: Stripe refused the order's payment for a reason that no other card and no
// retry can change (an amount Stripe does not charge, an unsupported currency): the order can
// never be paid, so orders cancels it at once and its ticket is for sale again, instead of
// staying reserved until the window ends. Reason is the message the buyer was given.
type PaymentRefused struct {
	OrderID   string `json:"orderId"`
	PaymentID string `json:"paymentId"`
	Reason    string `json:"reason"`
}

// ReservationRefused: tickets refused an order's reservation because the seller changed the
// ticket (title or price) after the buyer saw it and before the order.created reached tickets.
// The seller's edit, already answered 200, stands; orders cancels the order, which can then
// never complete (orders completes an order only once tickets has confirmed its reservation).
type ReservationRefused struct {
	OrderID  string `json:"orderId"`
	TicketID string `json:"ticketId"`
}

// Ping is the PingSource tick; its data is empty.
type Ping struct{}

func (TicketCreated) Type() string       { return TypeTicketCreated }
func (TicketUpdated) Type() string       { return TypeTicketUpdated }
func (OrderCreated) Type() string        { return TypeOrderCreated }
func (OrderCancelled) Type() string      { return TypeOrderCancelled }
func (OrderCompleted) Type() string      { return TypeOrderCompleted }
func (ExpirationCompleted) Type() string { return TypeExpirationCompleted }
func (PaymentCreated) Type() string      { return TypePaymentCreated }
func (PaymentRejected) Type() string     { return TypePaymentRejected }
func (PaymentRefused) Type() string      { return TypePaymentRefused }
func (ReservationRefused) Type() string  { return TypeReservationRefused }
func (Ping) Type() string                { return TypePing }

func (p TicketCreated) Subject() string       { return p.ID }
func (p TicketUpdated) Subject() string       { return p.ID }
func (p OrderCreated) Subject() string        { return p.ID }
func (p OrderCancelled) Subject() string      { return p.ID }
func (p OrderCompleted) Subject() string      { return p.ID }
func (p ExpirationCompleted) Subject() string { return p.OrderID }
func (p PaymentCreated) Subject() string      { return p.ID }
func (p PaymentRejected) Subject() string     { return p.OrderID }
func (p PaymentRefused) Subject() string      { return p.OrderID }
func (p ReservationRefused) Subject() string  { return p.OrderID }
func (Ping) Subject() string                  { return "" }

// Order statuses, as they appear in events and the API.
const (
	StatusCreated   = "created"
	StatusCancelled = "cancelled"
	StatusComplete  = "complete"
)

func (p TicketCreated) Validate() error {
	return check(id("id", p.ID), version(p.Version), title(p.Title), price("price", p.Price), id("userId", p.UserID))
}

func (p TicketUpdated) Validate() error {
	errs := check(id("id", p.ID), version(p.Version), title(p.Title), price("price", p.Price), id("userId", p.UserID))
	if p.OrderID != "" {
		errs = errors.Join(errs, id("orderId", p.OrderID))
	}
	return errs
}

func (p OrderCreated) Validate() error {
	var status error
	if p.Status != StatusCreated {
		status = errors.New(`status must be "created"`)
	}
	return check(id("id", p.ID), version(p.Version), status, id("userId", p.UserID), email(p.UserEmail),
		notZero("expiresAt", p.ExpiresAt), id("ticket.id", p.Ticket.ID), title(p.Ticket.Title), price("ticket.price", p.Ticket.Price))
}

func (p OrderCancelled) Validate() error {
	return check(id("id", p.ID), version(p.Version), id("ticket.id", p.Ticket.ID))
}

func (p OrderCompleted) Validate() error {
	return check(id("id", p.ID), version(p.Version), id("userId", p.UserID), email(p.UserEmail),
		id("ticket.id", p.Ticket.ID), title(p.Ticket.Title), price("ticket.price", p.Ticket.Price), id("paymentId", p.PaymentID))
}

func (p ExpirationCompleted) Validate() error { return check(id("orderId", p.OrderID)) }

func (p PaymentCreated) Validate() error {
	var amount, currency, stripeID error
	if p.Amount <= 0 {
		amount = errors.New("amount must be a positive number of cents")
	}
	if len(p.Currency) != 3 || strings.ToLower(p.Currency) != p.Currency {
		currency = errors.New("currency must be a lower-case ISO code such as usd")
	}
	if p.StripeID == "" {
		stripeID = errors.New("stripeId is required")
	}
	return check(id("id", p.ID), id("orderId", p.OrderID), stripeID, amount, currency)
}

func (p PaymentRejected) Validate() error {
	var reason error
	switch p.Reason {
	case "", RejectedCancelled, RejectedExpired, RejectedPaid, RejectedUnknown:
	default:
		reason = errors.New("reason must be cancelled, expired, paid or unknown")
	}
	return check(id("orderId", p.OrderID), id("paymentId", p.PaymentID), reason)
}

func (p PaymentRefused) Validate() error {
	var reason error
	if strings.TrimSpace(p.Reason) == "" {
		reason = errors.New("reason is required")
	}
	return check(id("orderId", p.OrderID), id("paymentId", p.PaymentID), reason)
}

func (p ReservationRefused) Validate() error {
	return check(id("orderId", p.OrderID), id("ticketId", p.TicketID))
}

func (Ping) Validate() error { return nil }

var objectID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// IsID reports whether s is an entity id: a MongoDB ObjectID in lower-case hex.
func IsID(s string) bool { return objectID.MatchString(s) }

func check(errs ...error) error { return errors.Join(errs...) }

func id(field, v string) error {
	if !IsID(v) {
		return errors.New(field + " must be a 24-hex id")
	}
	return nil
}

func version(v int64) error {
	if v < 0 {
		return errors.New("version must not be negative")
	}
	return nil
}

func title(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("title is required")
	}
	return nil
}

func price(field string, p Price) error {
	if p <= 0 {
		return errors.New(field + " must be greater than 0")
	}
	return nil
}

func email(v string) error {
	if !strings.Contains(v, "@") {
		return errors.New("userEmail must be an email address")
	}
	return nil
}

func notZero(field string, t time.Time) error {
	if t.IsZero() {
		return errors.New(field + " is required")
	}
	return nil
}
