package main

// events.go: the order events that reserve, release and sell tickets. Each handler decides on
// the ticket as read and writes version-checked; losing a race means reading and deciding again.

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/store"
)

type orderEvents struct {
	tickets tickets
	now     func() time.Time
}

func (h orderEvents) handlers() map[string]runtime.EventHandler {
	return map[string]runtime.EventHandler{
		events.TypeOrderCreated:   h.created,
		events.TypeOrderCancelled: h.cancelled,
		events.TypeOrderCompleted: h.completed,
	}
}

func (h orderEvents) created(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.OrderCreated](e)
	if err != nil {
		return nil, err
	}
	return nil, h.decide(ctx, p.Ticket.ID, func(t Ticket) (err error) {
		switch t.OnOrderCreated(p.ID, p.Ticket, p.ExpiresAt, h.now()) {
		case Reserve:
			_, err = h.tickets.reserve(ctx, t, p.ID, p.ExpiresAt)
		case Refuse:
			err = h.tickets.refuse(ctx, t, p.ID)
		case Wait:
			err = fmt.Errorf("ticket %s is held by order %s, which is live until %s: waiting for its cancel",
				t.ID, t.OrderID, t.OrderExpiresAt.Format(time.RFC3339))
		}
		return err
	})
}

func (h orderEvents) cancelled(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.OrderCancelled](e)
	if err != nil {
		return nil, err
	}
	return nil, h.decide(ctx, p.Ticket.ID, func(t Ticket) (err error) {
		switch t.OnOrderCancelled(p.ID) {
		case Release:
			_, err = h.tickets.release(ctx, t, p.ID)
		case Record:
			err = h.tickets.record(ctx, t, p.ID)
		}
		return err
	})
}

func (h orderEvents) completed(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.OrderCompleted](e)
	if err != nil {
		return nil, err
	}
	return nil, h.decide(ctx, p.Ticket.ID, func(t Ticket) (err error) {
		if t.OnOrderCompleted() == Sell {
			_, err = h.tickets.sell(ctx, t, p.ID)
		}
		return err
	})
}

// decide runs change on the event's ticket. Every error it returns is retryable (503): an
// unknown ticket's ticket.created may still be on its way, and a ticket changing under heavy
// contention settles.
func (h orderEvents) decide(ctx context.Context, ticketID string, change func(Ticket) error) error {
	id, _ := store.ParseID(ticketID) // events.Decode checked the id
	err := h.tickets.decide(ctx, id, change)
	if errors.Is(err, errNoTicket) {
		return fmt.Errorf("ticket %s is not known here yet", ticketID)
	}
	return err
}
