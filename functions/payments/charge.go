// charge.go: paying an order without ever charging twice, nor for an order that is not sold:
// claim the order's payment, authorize the claimed attempt at Stripe with its idempotency key
// (manual capture: the amount is held, not taken), record the result (and payment.created
// through the outbox), wait for orders' decision (events.go captures or releases), and finish
// attempts whose request died half-way.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/store"
)

// Payer runs the charge flow.
type Payer struct {
	store  Store
	stripe *Stripe
	box    *outbox.Outbox
	wait   waiting // how a request waits for orders' decision
	// decided wakes waiters when this process records a decision (the Handlers share it).
	decided *decisions
}

// errResumedRefused says a taken-over attempt turned out to authorize nothing: the caller's
// own card may be tried next.
var errResumedRefused = errors.New("the abandoned attempt authorized nothing")

// pay authorizes order o's amount on user's card (the PaymentMethod token), unless another
// request is paying it or has paid it, then waits for orders' decision. It returns the payment
// as it then is: succeeded (captured: 201), or still authorized when orders did not decide in
// time (202); a payment orders rejected comes back as the error saying why (the authorization
// is released).
func (p *Payer) pay(ctx context.Context, o Order, userID, token string) (Payment, error) {
	// Stripe must see the attempt through even when the caller hangs up; the wait need not.
	request := ctx
	ctx = context.WithoutCancel(ctx)
	// Two rounds: an abandoned attempt may have to be finished before the caller's own one.
	for range 2 {
		claimed, next, err := p.claim(ctx, o, userID, token)
		if err != nil {
			return Payment{}, err
		}
		if next == stepAwait {
			return p.await(request, claimed)
		}
		authorized, err := p.attempt(ctx, claimed, next == stepResume)
		if errors.Is(err, errResumedRefused) {
			continue
		}
		if err != nil {
			return Payment{}, err
		}
		return p.await(request, authorized)
	}
	return Payment{}, ErrInProgress
}

// await reads the payment until orders' decision has been carried out (captured, or released)
// or p.wait.outcome has passed. It reads again when this process records a decision on it
// (decisions), and otherwise at pauses growing from pollFirst to pollLongest: the decision may
// be carried out by another replica of payments, so the database, not this process, is where
// it shows.
func (p *Payer) await(ctx context.Context, pm Payment) (Payment, error) {
	woken, stop := p.decided.watch(pm.ID)
	defer stop()
	deadline := time.Now().Add(p.wait.outcome)
	delay := p.wait.pollFirst
	for {
		cur, found, err := p.store.payment(ctx, pm.ID)
		switch {
		case err != nil:
			return Payment{}, err
		case !found:
			return Payment{}, fmt.Errorf("payment %s vanished", pm.ID.Hex())
		case cur.Status == paymentSucceeded:
			return cur, nil
		case cur.Status == paymentReleased || cur.Status == paymentRefunded:
			return Payment{}, releasedError(cur.Reason)
		case cur.Status != paymentAuthorized || !time.Now().Before(deadline):
			return cur, nil // authorized: 202, GET /api/payments shows the outcome later
		}
		select {
		case <-ctx.Done():
			return cur, nil
		case <-woken:
			woken = nil // recorded: the next read sees it
		case <-time.After(min(delay, time.Until(deadline))):
		}
		delay = min(2*delay, p.wait.pollLongest)
	}
}

// claim makes the caller the only one working on the order's payment. It returns the claimed
// payment at its new version and the step it takes: stepResume for an abandoned attempt (whose
// token and amount it keeps: Stripe replays an idempotency key only with the same parameters),
// stepAwait for an authorized payment (returned as it is: nothing to claim).
func (p *Payer) claim(ctx context.Context, o Order, userID, token string) (Payment, step, error) {
	existing, found, err := p.store.paymentOf(ctx, o.ID.Hex())
	if err != nil {
		return Payment{}, 0, err
	}
	var current *Payment
	if found {
		current = &existing
	}
	now := time.Now()
	next, err := nextStep(o, current, token, now)
	if err != nil {
		return Payment{}, 0, err
	}
	switch next {
	case stepAwait:
		return existing, next, nil
	case stepFirstAttempt:
		claimed := Payment{ID: primitive.NewObjectID(), OrderID: o.ID.Hex(), UserID: userID, Status: paymentPending,
			Attempt: 1, ClaimedAt: now, Token: token, Amount: int64(o.Price), Currency: currency}
		if err := p.store.insertPayment(ctx, claimed); store.IsDuplicateKey(err) {
			return Payment{}, 0, ErrInProgress
		} else if err != nil {
			return Payment{}, 0, err
		}
		return claimed, next, nil
	case stepNewAttempt:
		claimed := existing
		claimed.Status, claimed.Attempt, claimed.ClaimedAt = paymentPending, existing.Attempt+1, now
		claimed.Token, claimed.Amount, claimed.Currency = token, int64(o.Price), currency
		err := p.store.updatePayment(ctx, existing, bson.M{"$set": bson.M{"status": claimed.Status,
			"attempt": claimed.Attempt, "claimedAt": now, "token": token, "amount": claimed.Amount, "currency": currency}})
		claimed, err = claimedOrBusy(claimed, err)
		return claimed, next, err
	default: // stepResume
		claimed, err := p.takeOver(ctx, existing, now)
		return claimed, next, err
	}
}

// takeOver claims an abandoned attempt, keeping its key and parameters.
func (p *Payer) takeOver(ctx context.Context, abandoned Payment, now time.Time) (Payment, error) {
	err := p.store.updatePayment(ctx, abandoned, bson.M{"$set": bson.M{"claimedAt": now}})
	claimed := abandoned
	claimed.ClaimedAt = now
	return claimedOrBusy(claimed, err)
}

// claimedOrBusy finishes a version-checked claim: losing the race means someone else works on it.
func claimedOrBusy(claimed Payment, err error) (Payment, error) {
	switch {
	case errors.Is(err, store.ErrConflict):
		return Payment{}, ErrInProgress
	case err != nil:
		return Payment{}, err
	}
	claimed.Version++
	return claimed, nil
}

// attempt authorizes a claimed payment and records what Stripe said. Each record is
// version-checked: when another request took the claim over meanwhile, it replays the same
// key and records the same answer, so losing that race changes nothing.
func (p *Payer) attempt(ctx context.Context, claimed Payment, resumed bool) (Payment, error) {
	stripeCtx, cancel := context.WithTimeout(ctx, chargeTimeout)
	out := p.stripe.authorize(stripeCtx, claimed)
	cancel()
	log := logging.FromContext(ctx).With("orderId", claimed.OrderID, "attempt", claimed.Attempt)

	switch {
	case out.authorized:
		// The amount is held on the card; payment.created asks orders to decide: capture on
		// order.completed, release on payment.rejected.
		held := claimed
		held.Status, held.StripeID, held.Amount = paymentAuthorized, out.stripeID, out.amount
		ev := events.New(events.PaymentCreated{ID: held.ID.Hex(), OrderID: held.OrderID, StripeID: held.StripeID,
			Amount: held.Amount, Currency: held.Currency})
		update := outbox.Add(ctx, bson.M{"$set": bson.M{"status": held.Status, "stripeId": held.StripeID, "amount": held.Amount}}, ev)
		err := p.store.updatePayment(ctx, claimed, update)
		if errors.Is(err, store.ErrConflict) {
			return held, nil // the request that took over records this same authorization
		}
		if err != nil {
			// Authorized but not recorded: the claim stays pending and is finished later with the same key.
			return Payment{}, err
		}
		held.Version++
		p.box.Deliver(ctx, paymentsCollection, held.ID, ev)
		return held, nil

	case out.refusal != nil && out.permanent:
		// No card will ever pay this order: record it, and tell orders (payment.refused, in the
		// same write) so that the order is cancelled and its ticket free at once.
		ev := events.NewWithID("refused-"+claimed.ID.Hex(), events.PaymentRefused{OrderID: claimed.OrderID,
			PaymentID: claimed.ID.Hex(), Reason: out.refusal.Error()})
		update := outbox.Add(ctx, bson.M{"$set": bson.M{"status": paymentRefused, "reason": out.refusal.Error()}}, ev)
		err := p.store.updatePayment(ctx, claimed, update)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return Payment{}, err
		}
		if err == nil {
			p.box.Deliver(ctx, paymentsCollection, claimed.ID, ev)
		}
		log.Infow("payment refused for good", "reason", out.refusal.Error())
		return Payment{}, out.refusal

	case out.refusal != nil:
		err := p.store.updatePayment(ctx, claimed, bson.M{"$set": bson.M{"status": paymentDeclined, "stripeId": out.stripeID}})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return Payment{}, err
		}
		log.Infow("authorization refused", "reason", out.refusal.Error())
		if resumed {
			return Payment{}, errResumedRefused
		}
		return Payment{}, out.refusal
	}

	// Unknown outcome: make the claim stale at once so that the next request (or the
	// background sweep) replays this attempt's key instead of waiting for staleAfter.
	log.Warnw("Stripe did not answer; the attempt will be replayed with its key", "error", out.err)
	err := p.store.updatePayment(ctx, claimed, bson.M{"$set": bson.M{"claimedAt": time.Unix(0, 0).UTC()}})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return Payment{}, err
	}
	return Payment{}, ErrStripeDown
}

// finishAbandoned takes over every pending claim older than staleAfter (its request died
// or Stripe did not answer) and replays it with its own key, so that a charge that happened
// is recorded and published even when the buyer never comes back.
func (p *Payer) finishAbandoned(ctx context.Context) {
	log := logging.FromContext(ctx)
	stale, err := p.store.abandoned(ctx, time.Now().Add(-staleAfter))
	if err != nil {
		log.Warnw("cannot look for abandoned payments", "error", err)
		return
	}
	for _, pm := range stale {
		claimed, err := p.takeOver(ctx, pm, time.Now())
		if err != nil {
			continue // someone else took it, or the store failed: the next sweep tries again
		}
		if _, err := p.attempt(ctx, claimed, true); err != nil && !errors.Is(err, errResumedRefused) {
			log.Warnw("abandoned payment still unfinished", "orderId", pm.OrderID, "error", err)
		}
	}
}
