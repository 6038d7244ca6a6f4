// events.go: one small handler per consumed event type.
package main

import (
	"context"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
)

// Function is the Knative function: events only, no REST routes.
func (x *Expiration) Function() runtime.Function {
	return runtime.Function{
		Name: "expiration",
		Events: map[string]runtime.EventHandler{
			events.TypeOrderCreated:   x.orderCreated,
			events.TypeOrderCancelled: x.orderCancelled,
			events.TypeOrderCompleted: x.orderCompleted,
			events.TypePing:           x.tick,
		},
	}
}

// orderCreated schedules the order's expiry; a redelivery finds it scheduled and changes nothing.
func (x *Expiration) orderCreated(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	o, err := events.Decode[events.OrderCreated](e)
	if err != nil {
		return nil, err
	}
	if _, err := x.queue.Schedule(ctx, o.ID, o.ExpiresAt); err != nil {
		return nil, fmt.Errorf("schedule order %s: %w", o.ID, err)
	}
	return nil, nil
}

// orderCancelled: a cancelled order never expires.
func (x *Expiration) orderCancelled(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	o, err := events.Decode[events.OrderCancelled](e)
	if err != nil {
		return nil, err
	}
	return nil, x.end(ctx, o.ID)
}

// orderCompleted: a paid order never expires.
func (x *Expiration) orderCompleted(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	o, err := events.Decode[events.OrderCompleted](e)
	if err != nil {
		return nil, err
	}
	return nil, x.end(ctx, o.ID)
}

func (x *Expiration) end(ctx context.Context, orderID string) error {
	if err := x.queue.End(ctx, orderID); err != nil {
		return fmt.Errorf("unschedule order %s: %w", orderID, err)
	}
	return nil
}

// tick expires the due orders; an error (503) makes the PingSource's Broker deliver it again.
func (x *Expiration) tick(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	if _, err := events.Decode[events.Ping](e); err != nil {
		return nil, err
	}
	n, err := x.Expire(ctx)
	if n > 0 {
		logging.FromContext(ctx).Infow("orders expired", "count", n)
	}
	return nil, err
}
