// events.go: the CloudEvent handlers: the order replica (order.created, .cancelled,
// .completed), the capture of the payment that completed an order (order.completed), and the
// release of a payment orders rejected (payment.rejected).
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
	store   Store
	stripe  *Stripe
	decided *decisions // wakes this process's requests waiting on a payment (Payer.await)
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

// orderCompleted updates the replica and captures the payment that completed the order: only
// now is the buyer's card charged.
func (h *Handlers) orderCompleted(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode[events.OrderCompleted](e)
	if err != nil {
		return nil, err
	}
	if err := h.capture(ctx, p.ID, p.PaymentID); err != nil {
		return nil, err
	}
	return nil, h.setStatus(ctx, p.ID, p.Version, events.StatusComplete)
}

// capture takes the authorized amount of payment paymentID of order orderID and records it
// succeeded. A repeat, or a payment that is not authorized (captured already, or not this
// function's), does nothing; Stripe unreachable is retried (503) with the same key.
func (h *Handlers) capture(ctx context.Context, orderID, paymentID string) error {
	id, _ := store.ParseID(paymentID)
	pm, found, err := h.store.payment(ctx, id)
	switch {
	case err != nil:
		return err
	case !found || pm.OrderID != orderID || pm.Status != paymentAuthorized:
		return nil
	}
	stripeCtx, cancel := context.WithTimeout(ctx, chargeTimeout)
	err = h.stripe.capture(stripeCtx, pm)
	cancel()
	if err != nil {
		return fmt.Errorf("capture %s: %w", pm.StripeID, err)
	}
	err = h.store.updatePayment(ctx, pm, bson.M{"$set": bson.M{"status": paymentSucceeded}})
	if err == nil || errors.Is(err, store.ErrConflict) { // a conflict: a parallel delivery recorded the same capture (same key)
		h.decided.decided(pm.ID)
		return nil
	}
	return err
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

// paymentRejected releases the authorization of a payment whose order could no longer take it
// (the buyer is charged nothing), or refunds it had it been captured. Stripe's idempotency keys
// and the payment's status make every repeat of the event change nothing more.
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
	case !found || pm.OrderID != p.OrderID || pm.Status != paymentAuthorized && pm.Status != paymentSucceeded:
		// Released or refunded already, or nothing this function holds: nothing to give back.
		logging.FromContext(ctx).Infow("nothing to release", "paymentId", p.PaymentID, "orderId", p.OrderID, "found", found, "status", pm.Status)
		return nil, nil
	}
	reason := p.Reason
	if reason == "" {
		reason = events.RejectedCancelled
	}
	stripeCtx, cancel := context.WithTimeout(ctx, chargeTimeout)
	var refundID string
	refunded := pm.Status == paymentSucceeded
	if refunded {
		refundID, err = h.stripe.refund(stripeCtx, pm)
	} else {
		refundID, refunded, err = h.stripe.release(stripeCtx, pm)
	}
	cancel()
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", pm.StripeID, err)
	}
	set := bson.M{"status": paymentReleased, "reason": reason}
	if refunded {
		set = bson.M{"status": paymentRefunded, "refundId": refundID, "reason": reason}
	}
	err = h.store.updatePayment(ctx, pm, bson.M{"$set": set})
	if err == nil || errors.Is(err, store.ErrConflict) { // a conflict: a parallel delivery recorded the same release (same key)
		h.decided.decided(pm.ID)
		return nil, nil
	}
	return nil, err
}
