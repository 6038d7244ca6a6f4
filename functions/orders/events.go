// events.go: the CloudEvents orders consumes, one small handler per type. nil means done (also
// for a repeat or an event that no longer applies); an error makes the Broker deliver again.
package main

import (
	"context"
	"errors"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/store"
)

// errBehind makes the Broker redeliver an update whose predecessor has not landed yet.
var errBehind = errors.New("ticket replica is behind this update")

// onTicketCreated inserts the ticket's replica, free; a repeat changes nothing.
func (s *service) onTicketCreated(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.TicketCreated](e)
	if err != nil {
		return nil, err
	}
	id, _ := store.ParseID(p.ID)
	_, err = s.store.insertTicket(ctx, Ticket{ID: id, Title: p.Title, Price: p.Price, UserID: p.UserID, Version: p.Version})
	return nil, err
}

// onTicketUpdated applies an edit in version order: only on top of version-1; an update
// already applied is a no-op; one that arrived before its predecessor is retried. The
// tickets function's orderId is its view of the reservation and never becomes ours; it
// confirms that order (tickets took its reservation), whatever the version.
func (s *service) onTicketUpdated(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.TicketUpdated](e)
	if err != nil {
		return nil, err
	}
	id, _ := store.ParseID(p.ID)
	if orderID, ok := store.ParseID(p.OrderID); ok {
		// tickets reserved (or sold) the ticket for this order: a fact whatever the replica's
		// version, and what lets the order complete (Order.Confirmed).
		if err := s.store.confirm(ctx, orderID); err != nil {
			return nil, err
		}
	}
	if p.Version == 0 {
		return nil, nil // version 0 is ticket.created's: nothing to apply on top of
	}
	err = s.store.updateTicket(ctx, id, p.Version, bson.M{"title": p.Title, "price": p.Price, "userId": p.UserID})
	if !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	t, err := s.store.ticket(ctx, id)
	switch {
	case errors.Is(err, errMissing):
		return nil, fmt.Errorf("%w: no replica of %s yet", errBehind, p.ID)
	case err != nil:
		return nil, err
	case t.Version >= p.Version:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: replica at version %d, update is %d", errBehind, t.Version, p.Version)
	}
}

// onExpirationCompleted makes an order's expiry official: a created order is cancelled and
// its ticket released; a complete or cancelled one stays as it is, with no event.
func (s *service) onExpirationCompleted(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.ExpirationCompleted](e)
	if err != nil {
		return nil, err
	}
	id, _ := store.ParseID(p.OrderID)
	return nil, s.expire(ctx, id)
}

// onPaymentCreated completes the paid order, or answers payment.rejected (the reply event,
// which the Broker ingests) when the order can no longer take the payment.
func (s *service) onPaymentCreated(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.PaymentCreated](e)
	if err != nil {
		return nil, err
	}
	return s.pay(ctx, p)
}

// onPaymentRefused cancels an order no card can ever pay (Stripe refuses its amount), so that
// its ticket is for sale again at once instead of at the end of the window.
func (s *service) onPaymentRefused(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.PaymentRefused](e)
	if err != nil {
		return nil, err
	}
	id, _ := store.ParseID(p.OrderID)
	return nil, s.cancelFor(ctx, id, ReasonPaymentRefused)
}

// onReservationRefused cancels an order whose reservation tickets refused: the seller changed
// the ticket before the order reached tickets, and the seller's edit stands. The order was
// never confirmed, so it cannot be complete.
func (s *service) onReservationRefused(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.ReservationRefused](e)
	if err != nil {
		return nil, err
	}
	id, _ := store.ParseID(p.OrderID)
	return nil, s.cancelFor(ctx, id, ReasonTicketChanged)
}
