// function.go: the orders function assembled from its parts, and the flows that REST and
// events share: place an order (reserve, take over), cancel it, pay it.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

// Config is what the function is built from: main fills it from the environment, tests with
// a clock and ids of their own.
type Config struct {
	DB        *store.DB
	Publisher outbox.Publisher
	Sessions  *session.Manager
	Window    time.Duration             // how long an order holds its ticket (EXPIRATION_WINDOW)
	Now       func() time.Time          // nil: time.Now
	NewID     func() primitive.ObjectID // nil: primitive.NewObjectID
}

// service holds what the handlers share.
type service struct {
	store  storage
	box    *outbox.Outbox
	window time.Duration
	now    func() time.Time
	newID  func() primitive.ObjectID
}

// New returns the orders function; main and the tests both run this one.
func New(cfg Config) runtime.Function {
	return newService(cfg).function(cfg.Sessions)
}

func newService(cfg Config) *service {
	s := &service{
		store:  newStorage(cfg.DB),
		box:    outbox.New(cfg.Publisher, cfg.DB, ordersCollection),
		window: cfg.Window,
		now:    cfg.Now,
		newID:  cfg.NewID,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = primitive.NewObjectID
	}
	return s
}

func (s *service) function(sessions *session.Manager) runtime.Function {
	return runtime.Function{
		Name:   "orders",
		Routes: s.routes,
		Events: map[string]runtime.EventHandler{
			events.TypeTicketCreated:       s.onTicketCreated,
			events.TypeTicketUpdated:       s.onTicketUpdated,
			events.TypeExpirationCompleted: s.onExpirationCompleted,
			events.TypePaymentCreated:      s.onPaymentCreated,
			events.TypePaymentRefused:      s.onPaymentRefused,
			events.TypeReservationRefused:  s.onReservationRefused,
		},
		Sessions:   sessions,
		Background: s.flush,
	}
}

// flush re-publishes events left in the outbox by a Broker outage.
func (s *service) flush(ctx context.Context) {
	if _, err := s.box.Flush(ctx); err != nil {
		logging.FromContext(ctx).Warnw("outbox flush failed; the next one retries", "error", err)
	}
}

// clock is the present at the store's precision (milliseconds), so an order reads back as it
// was answered.
func (s *service) clock() time.Time {
	return s.now().UTC().Truncate(time.Millisecond)
}

// place reserves ticketID for the buyer and records the order. The order id exists before
// the reservation, the reservation (one CAS on the replica) decides, and only the winner
// writes its order; a failed write is settled (given back unless it landed). A crash between
// CAS and write leaves a reservation without an order, which ends by itself at ReservedUntil
// (Ticket.Free). The README's table walks through every failure point.
func (s *service) place(ctx context.Context, buyer session.User, ticketID primitive.ObjectID) (Order, error) {
	now := s.clock()
	t, err := s.reservable(ctx, buyer, ticketID, now)
	if err != nil {
		return Order{}, err
	}
	o := Order{
		ID:        s.newID(),
		Status:    StatusCreated,
		UserID:    buyer.ID,
		UserEmail: buyer.Email,
		CreatedAt: now,
		ExpiresAt: now.Add(s.window),
		Ticket:    events.OrderTicket{ID: t.ID.Hex(), Title: t.Title, Price: t.Price},
	}
	won, err := s.store.reserve(ctx, t.ID, t.ReservedBy, o.ID, o.ExpiresAt)
	if err != nil {
		return Order{}, err
	}
	if !won {
		return Order{}, ErrReserved
	}
	created := events.New(events.OrderCreated{ID: o.ID.Hex(), Version: o.Version, Status: o.Status,
		UserID: o.UserID, UserEmail: o.UserEmail, ExpiresAt: o.ExpiresAt, Ticket: o.Ticket})
	if err := s.store.insertOrder(ctx, o, created); err != nil {
		if err := s.settle(ctx, o, t.ID, err); err != nil {
			return Order{}, err
		}
	}
	s.box.Deliver(ctx, ordersCollection, o.ID, created)
	return o, nil
}

// settle decides what a failed write of order o means. The outcome of a failed write can be
// unclear (a timeout after the server wrote it), so look: our order is there -> it landed, go
// on; it is not (or another order has that id) -> give the ticket back; cannot look -> keep
// the reservation, which then ends at ReservedUntil like a crashed request's.
func (s *service) settle(ctx context.Context, o Order, ticketID primitive.ObjectID, insertErr error) error {
	insertErr = fmt.Errorf("insert order: %w", insertErr)
	stored, err := s.store.order(ctx, o.ID)
	switch {
	case err == nil && stored.UserID == o.UserID && stored.Ticket.ID == o.Ticket.ID && stored.CreatedAt.Equal(o.CreatedAt):
		logging.FromContext(ctx).Warnw("the order was written despite the error", "order", o.ID.Hex(), "error", insertErr)
		return nil
	case err == nil || errors.Is(err, errMissing):
		return errors.Join(insertErr, s.store.release(ctx, ticketID, o.ID))
	default:
		return errors.Join(insertErr, err)
	}
}

// reservable returns the ticket when buyer may reserve it now. A holder that expired is
// cancelled here (lazy takeover) BEFORE the ticket is taken: the version check makes this
// cancel and a late payment of the holder exclude each other, so a paid order never loses its
// ticket to the newcomer.
func (s *service) reservable(ctx context.Context, buyer session.User, ticketID primitive.ObjectID, now time.Time) (Ticket, error) {
	for { // a conflict means the holder moved; its next read is final, so this loops at most twice
		t, err := s.store.ticket(ctx, ticketID)
		if errors.Is(err, errMissing) {
			return Ticket{}, ErrTicketNotFound
		}
		if err != nil {
			return Ticket{}, err
		}
		if t.UserID == buyer.ID {
			return Ticket{}, ErrOwnTicket
		}
		holder, err := s.holder(ctx, t)
		if err != nil {
			return Ticket{}, err
		}
		if !t.Free(holder, now) {
			return Ticket{}, ErrReserved
		}
		if holder == nil || holder.Status != StatusCreated {
			return t, nil
		}
		if err := s.cancel(ctx, *holder, false, ReasonExpired); !errors.Is(err, store.ErrConflict) {
			return t, err
		}
	}
}

// holder returns the order that holds t, nil when t is free or its order was never written.
func (s *service) holder(ctx context.Context, t Ticket) (*Order, error) {
	if t.ReservedBy == nil {
		return nil, nil
	}
	o, err := s.store.order(ctx, *t.ReservedBy)
	if errors.Is(err, errMissing) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// cancel moves a created order to cancelled (for reason) with its order.cancelled event in the same write,
// then (when release is set) frees its ticket if the order still holds it, and publishes.
// store.ErrConflict: the order moved meanwhile; the caller re-reads it and decides again.
func (s *service) cancel(ctx context.Context, o Order, release bool, reason string) error {
	e := events.New(events.OrderCancelled{ID: o.ID.Hex(), Version: o.Version + 1, Ticket: events.OrderTicket{ID: o.Ticket.ID}})
	if err := s.transition(ctx, o, StatusCancelled, bson.M{"cancelReason": reason}, e); err != nil {
		return err
	}
	if release {
		ticketID, _ := store.ParseID(o.Ticket.ID) // written by place from an ObjectID
		if err := s.store.release(ctx, ticketID, o.ID); err != nil {
			// The order is cancelled, which already makes its ticket free (Ticket.Free); the
			// event must still go out.
			logging.FromContext(ctx).Warnw("ticket not released; the next buyer takes it over", "order", o.ID.Hex(), "error", err)
		}
	}
	s.box.Deliver(ctx, ordersCollection, o.ID, e)
	return nil
}

// complete moves a created order to complete with the payment, publishing order.completed.
func (s *service) complete(ctx context.Context, o Order, paymentID string) error {
	e := events.New(events.OrderCompleted{ID: o.ID.Hex(), Version: o.Version + 1, UserID: o.UserID,
		UserEmail: o.UserEmail, Ticket: o.Ticket, PaymentID: paymentID})
	if err := s.transition(ctx, o, StatusComplete, bson.M{"paymentId": paymentID}, e); err != nil {
		return err
	}
	s.box.Deliver(ctx, ordersCollection, o.ID, e)
	return nil
}

// errTransition guards the state machine against a caller that decided wrongly.
var errTransition = errors.New("orders: transition not allowed")

func (s *service) transition(ctx context.Context, o Order, status string, set bson.M, e cloudevents.Event) error {
	if !o.CanBecome(status) {
		return fmt.Errorf("%w: %s -> %s", errTransition, o.Status, status)
	}
	return s.store.transition(ctx, o, status, set, e)
}

// cancelByBuyer is DELETE /api/orders/:id: cancelled once, with one event; a repeat is a
// no-op; a complete order refuses.
func (s *service) cancelByBuyer(ctx context.Context, buyer session.User, id primitive.ObjectID) error {
	for { // a conflict means the order moved; its next read is final, so this loops at most twice
		o, err := s.ownOrder(ctx, buyer, id)
		if err != nil {
			return err
		}
		outcome, err := o.OnCancel()
		if err != nil || outcome == AlreadyCancelled {
			return err
		}
		if err := s.cancel(ctx, o, true, ReasonBuyer); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

// ownOrder returns order id if buyer owns it.
func (s *service) ownOrder(ctx context.Context, buyer session.User, id primitive.ObjectID) (Order, error) {
	o, err := s.store.order(ctx, id)
	if errors.Is(err, errMissing) {
		return Order{}, ErrOrderNotFound
	}
	if err != nil {
		return Order{}, err
	}
	if o.UserID != buyer.ID {
		return Order{}, httpapi.ErrForbidden
	}
	return o, nil
}

// expire is expiration.completed: a created order is cancelled and its ticket released; a
// complete or cancelled one stays as it is.
func (s *service) expire(ctx context.Context, id primitive.ObjectID) error {
	return s.cancelFor(ctx, id, ReasonExpired)
}

// cancelFor cancels order id, if it is created, for reason, releasing its ticket: expiry, and
// the refusals that make an order impossible to complete (reservation.refused, payment.refused).
// A complete, cancelled or unknown order stays as it is.
func (s *service) cancelFor(ctx context.Context, id primitive.ObjectID, reason string) error {
	for { // at most twice, as in cancelByBuyer
		o, err := s.store.order(ctx, id)
		if errors.Is(err, errMissing) {
			return nil // never written (its insert failed): nothing to cancel
		}
		if err != nil || o.Status != StatusCreated {
			return err
		}
		if err := s.cancel(ctx, o, true, reason); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

// errUnconfirmed makes the Broker redeliver a payment whose order tickets has not confirmed yet.
var errUnconfirmed = errors.New("tickets has not confirmed the order's reservation yet")

// pay is payment.created. It returns payment.rejected for a payment the order cannot take
// (unknown, cancelled, expired, or paid by another payment), so that payments releases it. A
// payment of an order tickets has not confirmed waits (retried): the seller's edit may still
// win over the reservation, and a sale must be at the terms the buyer saw.
func (s *service) pay(ctx context.Context, p events.PaymentCreated) (*cloudevents.Event, error) {
	id, _ := store.ParseID(p.OrderID) // events.Decode checked it is an id
	for {                             // at most twice, as in cancelByBuyer
		o, err := s.store.order(ctx, id)
		if errors.Is(err, errMissing) {
			return rejection(p, events.RejectedUnknown), nil
		}
		if err != nil {
			return nil, err
		}
		now := s.clock()
		switch o.OnPayment(p.ID, now) {
		case AwaitConfirmation:
			return nil, fmt.Errorf("order %s: %w", p.OrderID, errUnconfirmed)
		case Complete:
			err = s.complete(ctx, o, p.ID)
		case AlreadyPaid:
			return nil, nil
		case ExpireAndReject:
			err = s.cancel(ctx, o, true, ReasonExpired)
			if err == nil {
				return rejection(p, events.RejectedExpired), nil
			}
		case Reject:
			return rejection(p, o.RejectReason(now)), nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
	}
}

// rejection is the payment.rejected answer to payment p. Its id derives from the payment, so
// that every repeat of one rejection carries one id and the Broker and payments drop repeats.
func rejection(p events.PaymentCreated, reason string) *cloudevents.Event {
	e := events.NewWithID("rejected-"+p.ID, events.PaymentRejected{OrderID: p.OrderID, PaymentID: p.ID, Reason: reason})
	return &e
}
