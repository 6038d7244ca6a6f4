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

// Emails is the function's state.
type Emails struct {
	records  Records
	from     string
	sendgrid *SendGrid // nil: no SENDGRID_API_KEY, emails go to the log
	lease    time.Duration
	Now      func() time.Time
}

// New returns the emails function over its database; sg may be nil (log instead of send).
func New(db *store.DB, from string, sg *SendGrid) *Emails {
	lease := Lease(DefaultSendTimeout)
	if sg != nil {
		lease = Lease(sg.timeout)
	}
	return &Emails{records: Records{db: db}, from: from, sendgrid: sg, lease: lease, Now: time.Now}
}

// Function is the Knative function: events only, no REST routes.
func (x *Emails) Function() runtime.Function {
	return runtime.Function{
		Name:   "emails",
		Events: map[string]runtime.EventHandler{events.TypeOrderCompleted: x.orderCompleted},
	}
}

// orderCompleted sends the buyer one confirmation. The record is claimed before the send, so
// duplicate and concurrent deliveries find it and never send a second one. The send does not
// end with the Broker's request: a Broker that gives up on a slow SendGrid (its timeout, the
// Service's) and redelivers finds the send still in flight (503, nothing sent) until its
// outcome is recorded.
func (x *Emails) orderCompleted(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	o, err := events.Decode[events.OrderCompleted](e)
	if err != nil {
		return nil, err
	}
	log := logging.FromContext(ctx).With("orderId", o.ID)
	m := Confirmation(x.from, o)
	now := x.Now()
	rec, err := x.records.Claim(ctx, m, o.ID, now, now.Add(x.lease))
	switch {
	case errors.Is(err, ErrDone):
		return nil, nil
	case errors.Is(err, ErrGaveUp):
		log.Errorw("confirmation not tried again: SendGrid may have accepted an earlier try; look for custom argument order_id in its activity feed", "to", m.To)
		return nil, nil
	case err != nil:
		return nil, err // ErrInFlight or the database: 503, look again later
	}

	// Detached from the Broker's request: SendGrid's own timeout bounds it.
	detached := context.WithoutCancel(ctx)
	status, reason, sendErr := x.send(detached, m)
	unknowns := rec.Unknowns
	if status == StatusUnknown {
		unknowns++
		status = AfterUnknown(unknowns)
	}
	settle, cancel := context.WithTimeout(detached, 5*time.Second)
	defer cancel()
	if err := x.records.Settle(settle, rec, status, reason, unknowns, x.Now()); err != nil {
		return nil, errors.Join(sendErr, fmt.Errorf("record email status %q: %w", status, err))
	}
	switch status {
	case StatusSent:
		log.Infow("confirmation sent", "to", m.To, "attempt", rec.Attempts)
	case StatusFailed:
		log.Errorw("confirmation refused by SendGrid, not retried", "to", m.To, "reason", reason)
	case StatusMaybeSent:
		log.Errorw("confirmation not tried again: SendGrid may have accepted an earlier try; look for custom argument order_id in its activity feed", "to", m.To, "reason", reason)
	case StatusRetry, StatusUnknown:
		return nil, sendErr // 503: the Broker comes back for the one more try
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
	case errors.Is(err, ErrUnknown):
		return StatusUnknown, err.Error(), err
	default:
		return StatusRetry, err.Error(), err
	}
}
