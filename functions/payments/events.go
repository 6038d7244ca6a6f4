// events.go: the CloudEvent handlers: the order replica (order.created, .cancelled,
// .completed) and refunds (payment.rejected).
package main

import (
	"context"
	"errors"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/store"
)

// Handlers handles the events payments consumes.
type Handlers struct {
	store  Store
	stripe *Stripe
}

func (h *Handlers) byType() map[string]runtime.EventHandler {
	return map[string]runtime.EventHandler{
		events.TypeOrderCreated:    h.orderCreated,
		events.TypeOrderCancelled:  h.orderCancelled,
		events.TypeOrderCompleted:  h.orderCompleted,
		events.TypePaymentRejected: h.paymentRejected,
	}
}

func (h *Handlers) orderCreated(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.OrderCreated](e)
	if err != nil {
		return nil, err
	}
	id, _ := store.ParseID(p.ID) // Decode checked the id
	return nil, h.store.insertOrder(ctx, Order{ID: id, Version: p.Version, UserID: p.UserID,
		Price: p.Ticket.Price, Status: p.Status, ExpiresAt: p.ExpiresAt})
}

func (h *Handlers) orderCancelled(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.OrderCancelled](e)
	if err != nil {
		return nil, err
	}
	return nil, h.setStatus(ctx, p.ID, p.Version, events.StatusCancelled)
}

func (h *Handlers) orderCompleted(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.OrderCompleted](e)
	if err != nil {
		return nil, err
	}
	return nil, h.setStatus(ctx, p.ID, p.Version, events.StatusComplete)
}

// setStatus applies an order's status change of the given version to the replica, in order:
// a repeat is a no-op, a change ahead of a missing one (or of order.created) is retried.
func (h *Handlers) setStatus(ctx context.Context, orderID string, version int64, status string) error {
	id, _ := store.ParseID(orderID)
	o, found, err := h.store.order(ctx, id)
	switch {
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("order %s: %w", orderID, errReplicaBehind)
	}
	apply, err := o.applies(version)
	if !apply {
		return err
	}
	// A conflict means a parallel delivery of this event won; the Broker's retry sees it applied.
	return h.store.setOrderStatus(ctx, o, status)
}

// paymentRejected refunds a payment whose order could no longer be paid. Stripe's idempotency
// key and the payment's status make every repeat of the event refund nothing more.
func (h *Handlers) paymentRejected(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.PaymentRejected](e)
	if err != nil {
		return nil, err
	}
	id, _ := store.ParseID(p.PaymentID)
	pm, found, err := h.store.payment(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case !found || pm.OrderID != p.OrderID || pm.Status != paymentSucceeded:
		// Refunded already, or nothing this function charged: nothing to give back.
		logging.FromContext(ctx).Infow("nothing to refund", "paymentId", p.PaymentID, "orderId", p.OrderID, "found", found, "status", pm.Status)
		return nil, nil
	}
	stripeCtx, cancel := context.WithTimeout(ctx, chargeTimeout)
	refundID, err := h.stripe.refund(stripeCtx, pm)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("refund %s: %w", pm.StripeID, err)
	}
	err = h.store.updatePayment(ctx, pm, bson.M{"$set": bson.M{"status": paymentRefunded, "refundId": refundID}})
	if errors.Is(err, store.ErrConflict) {
		return nil, nil // a parallel delivery recorded the same refund (same key)
	}
	return nil, err
}
