// charge.go: paying an order without ever charging twice: claim the order's payment, charge
// the claimed attempt at Stripe with its idempotency key, record the result (and payment.created
// through the outbox), and finish attempts whose request died half-way.
package main

import (
	"context"
	"errors"
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
}

// errResumedRefused says a taken-over attempt turned out to charge nothing: the caller's own
// card may be tried next.
var errResumedRefused = errors.New("the abandoned attempt charged nothing")

// pay charges order o for user with the PaymentMethod token, unless another request is paying
// it or has paid it. It returns the succeeded payment or an error for the caller.
func (p *Payer) pay(ctx context.Context, o Order, userID, token string) (Payment, error) {
	// Stripe must see the attempt through even when the caller hangs up.
	ctx = context.WithoutCancel(ctx)
	// Two rounds: an abandoned attempt may have to be finished before the caller's own one.
	for range 2 {
		claimed, resumed, err := p.claim(ctx, o, userID, token)
		if err != nil {
			return Payment{}, err
		}
		paid, err := p.attempt(ctx, claimed, resumed)
		if !errors.Is(err, errResumedRefused) {
			return paid, err
		}
	}
	return Payment{}, ErrInProgress
}

// claim makes the caller the only one working on the order's payment. It returns the claimed
// payment at its new version, and resumed when it is an abandoned attempt (whose token and
// amount it keeps: Stripe replays an idempotency key only with the same parameters).
func (p *Payer) claim(ctx context.Context, o Order, userID, token string) (Payment, bool, error) {
	existing, found, err := p.store.paymentOf(ctx, o.ID.Hex())
	if err != nil {
		return Payment{}, false, err
	}
	var current *Payment
	if found {
		current = &existing
	}
	now := time.Now()
	next, err := nextStep(o, current, now)
	if err != nil {
		return Payment{}, false, err
	}
	switch next {
	case stepFirstAttempt:
		claimed := Payment{ID: primitive.NewObjectID(), OrderID: o.ID.Hex(), UserID: userID, Status: paymentPending,
			Attempt: 1, ClaimedAt: now, Token: token, Amount: int64(o.Price), Currency: currency}
		if err := p.store.insertPayment(ctx, claimed); store.IsDuplicateKey(err) {
			return Payment{}, false, ErrInProgress
		} else if err != nil {
			return Payment{}, false, err
		}
		return claimed, false, nil
	case stepNewAttempt:
		claimed := existing
		claimed.Status, claimed.Attempt, claimed.ClaimedAt = paymentPending, existing.Attempt+1, now
		claimed.Token, claimed.Amount, claimed.Currency = token, int64(o.Price), currency
		err := p.store.updatePayment(ctx, existing, bson.M{"$set": bson.M{"status": claimed.Status,
			"attempt": claimed.Attempt, "claimedAt": now, "token": token, "amount": claimed.Amount, "currency": currency}})
		claimed, err = claimedOrBusy(claimed, err)
		return claimed, false, err
	default: // stepResume
		claimed, err := p.takeOver(ctx, existing, now)
		return claimed, true, err
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

// attempt charges a claimed payment and records what Stripe said. Each record is
// version-checked: when another request took the claim over meanwhile, it replays the same
// key and records the same answer, so losing that race changes nothing.
func (p *Payer) attempt(ctx context.Context, claimed Payment, resumed bool) (Payment, error) {
	stripeCtx, cancel := context.WithTimeout(ctx, chargeTimeout)
	out := p.stripe.charge(stripeCtx, claimed)
	cancel()
	log := logging.FromContext(ctx).With("orderId", claimed.OrderID, "attempt", claimed.Attempt)

	switch {
	case out.paid:
		paid := claimed
		paid.Status, paid.StripeID, paid.Amount = paymentSucceeded, out.stripeID, out.amount
		ev := events.New(events.PaymentCreated{ID: paid.ID.Hex(), OrderID: paid.OrderID, StripeID: paid.StripeID,
			Amount: paid.Amount, Currency: paid.Currency})
		update := outbox.Add(ctx, bson.M{"$set": bson.M{"status": paid.Status, "stripeId": paid.StripeID, "amount": paid.Amount}}, ev)
		err := p.store.updatePayment(ctx, claimed, update)
		if errors.Is(err, store.ErrConflict) {
			return paid, nil // the request that took over records this same charge
		}
		if err != nil {
			// Charged but not recorded: the claim stays pending and is finished later with the same key.
			return Payment{}, err
		}
		p.box.Deliver(ctx, paymentsCollection, paid.ID, ev)
		return paid, nil

	case out.refusal != nil:
		err := p.store.updatePayment(ctx, claimed, bson.M{"$set": bson.M{"status": paymentDeclined, "stripeId": out.stripeID}})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return Payment{}, err
		}
		log.Infow("charge refused", "reason", out.refusal.Error())
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
