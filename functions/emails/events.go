// events.go: the one consumed event, order.completed, and the function around it.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/store"
)

// Lease is how long a delivery owns an order's send before another may take it over: well
// over SendTimeout, so a live sender always settles before anyone else sends.
const Lease = time.Minute

// Emails is the function's state.
type Emails struct {
	records  Records
	from     string
	sendgrid *SendGrid // nil: no SENDGRID_API_KEY, emails go to the log
	Now      func() time.Time
}

// New returns the emails function over its database; sg may be nil (log instead of send).
func New(db *store.DB, from string, sg *SendGrid) *Emails {
	return &Emails{records: Records{db: db}, from: from, sendgrid: sg, Now: time.Now}
}

// Function is the Knative function: events only, no REST routes.
func (x *Emails) Function() runtime.Function {
	return runtime.Function{
		Name:   "emails",
		Events: map[string]runtime.EventHandler{events.TypeOrderCompleted: x.orderCompleted},
	}
}

// orderCompleted sends the buyer one confirmation. The record is claimed before the send, so
// duplicate and concurrent deliveries find it and never send a second one.
func (x *Emails) orderCompleted(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	o, err := events.Decode[events.OrderCompleted](e)
	if err != nil {
		return nil, err
	}
	log := logging.FromContext(ctx).With("orderId", o.ID)
	m := Confirmation(x.from, o)
	now := x.Now()
	rec, err := x.records.Claim(ctx, m, o.ID, now, now.Add(Lease))
	switch {
	case errors.Is(err, ErrDone):
		return nil, nil
	case err != nil:
		return nil, err // ErrInFlight or the database: 503, look again later
	}

	status, reason, sendErr := x.send(ctx, m)
	// Record the outcome even if the Broker gave up on the request meanwhile: the email went.
	settle, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := x.records.Settle(settle, rec, status, reason, x.Now()); err != nil {
		return nil, errors.Join(sendErr, fmt.Errorf("record email status %q: %w", status, err))
	}
	switch status {
	case StatusSent:
		log.Infow("confirmation sent", "to", m.To, "attempt", rec.Attempts)
	case StatusFailed:
		log.Errorw("confirmation refused by SendGrid, not retried", "to", m.To, "reason", reason)
	case StatusRetry:
		return nil, sendErr
	}
	return nil, nil
}

// send hands the email to SendGrid, or to the log without a key, and says what to record.
func (x *Emails) send(ctx context.Context, m Email) (status, reason string, err error) {
	if x.sendgrid == nil {
		logging.FromContext(ctx).Infow("not sent: no SENDGRID_API_KEY", "from", m.From, "to", m.To, "subject", m.Subject, "text", m.Text)
		return StatusNotSent, "no SENDGRID_API_KEY", nil
	}
	err = x.sendgrid.Send(ctx, m)
	switch {
	case err == nil:
		return StatusSent, "", nil
	case errors.Is(err, ErrRejected):
		return StatusFailed, err.Error(), nil
	default:
		return StatusRetry, err.Error(), err
	}
}
