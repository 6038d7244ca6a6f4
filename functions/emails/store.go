// store.go: the emails database. One record per order, keyed by the order id (the _id index
// is the unique key), so that one order gets at most one email whatever the Broker delivers.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/tickit/tickit/functions/internal/store"
)

const collection = "emails"

// Record is an order's confirmation email and how far it got.
type Record struct {
	OrderID    string    `bson:"_id"`
	Version    int64     `bson:"version"`
	Status     string    `bson:"status"`
	Reason     string    `bson:"reason,omitempty"` // why it is not sent (yet)
	To         string    `bson:"to"`
	Subject    string    `bson:"subject"`
	Attempts   int       `bson:"attempts"`
	Unknowns   int       `bson:"unknowns"` // tries whose outcome is unknown, see MaxUnknownRetries
	LeaseUntil time.Time `bson:"leaseUntil"`
	CreatedAt  time.Time `bson:"createdAt"`
	UpdatedAt  time.Time `bson:"updatedAt"`
}

var (
	// ErrDone: the order's email was dealt with already (sent, refused, or logged).
	ErrDone = errors.New("the confirmation of this order was dealt with already")
	// ErrInFlight: another delivery is sending the order's email right now. Not done yet, so
	// the event is answered 503 and checked again later, when the outcome is known.
	ErrInFlight = errors.New("another delivery is sending the confirmation of this order")
	// ErrGaveUp: the outcome stayed unknown after MaxUnknownRetries retries; the record is now
	// StatusMaybeSent and the email is never tried again (SendGrid may have accepted it).
	ErrGaveUp = errors.New("the confirmation of this order may or may not have been sent: not tried again")
)

// Records is the emails collection.
type Records struct{ db *store.DB }

// Claim makes the caller the one delivery that sends the order's email, until leaseUntil:
// by inserting its record, or by taking over a record whose last try failed or whose owner
// died. It returns the record as claimed, ErrDone or ErrInFlight.
func (r Records) Claim(ctx context.Context, m Email, orderID string, now, leaseUntil time.Time) (Record, error) {
	coll, err := r.db.Collection(ctx, collection)
	if err != nil {
		return Record{}, err
	}
	rec := Record{OrderID: orderID, Status: StatusSending, To: m.To, Subject: m.Subject, Attempts: 1,
		LeaseUntil: leaseUntil, CreatedAt: now, UpdatedAt: now}
	_, err = coll.InsertOne(ctx, rec)
	if err == nil {
		return rec, nil
	}
	if !store.IsDuplicateKey(err) {
		return Record{}, fmt.Errorf("record the email of order %s: %w", orderID, err)
	}
	var old Record
	if err := coll.FindOne(ctx, bson.M{"_id": orderID}).Decode(&old); err != nil {
		return Record{}, fmt.Errorf("read the email of order %s: %w", orderID, err)
	}
	switch {
	case Final(old.Status):
		return old, ErrDone
	case old.Status == StatusSending && now.Before(old.LeaseUntil):
		return old, ErrInFlight
	}
	// A sender that died holding the lease leaves an unknown outcome behind: it counts.
	unknowns := Unknowns(old.Status, old.Unknowns, old.LeaseUntil, now)
	if unknowns > MaxUnknownRetries {
		err = store.UpdateVersion(ctx, coll, orderID, old.Version, bson.M{"$set": bson.M{
			"status": StatusMaybeSent, "unknowns": unknowns, "updatedAt": now,
			"reason": fmt.Sprintf("%d tries with an unknown outcome; SendGrid may have accepted one", unknowns)}})
		if errors.Is(err, store.ErrConflict) {
			return old, ErrInFlight
		}
		if err != nil {
			return Record{}, fmt.Errorf("give up the email of order %s: %w", orderID, err)
		}
		return old, ErrGaveUp
	}
	err = store.UpdateVersion(ctx, coll, orderID, old.Version, bson.M{
		"$set": bson.M{"status": StatusSending, "leaseUntil": leaseUntil, "updatedAt": now, "unknowns": unknowns},
		"$inc": bson.M{"attempts": 1},
	})
	if errors.Is(err, store.ErrConflict) {
		return old, ErrInFlight // another delivery took it over first
	}
	if err != nil {
		return Record{}, fmt.Errorf("take over the email of order %s: %w", orderID, err)
	}
	old.Version, old.Status, old.LeaseUntil, old.UpdatedAt, old.Unknowns = old.Version+1, StatusSending, leaseUntil, now, unknowns
	old.Attempts++
	return old, nil
}

// Settle records the outcome of the claimed send, and the record's count of unknown outcomes.
// ErrConflict means the lease ran out and another delivery took the record over.
func (r Records) Settle(ctx context.Context, rec Record, status, reason string, unknowns int, now time.Time) error {
	coll, err := r.db.Collection(ctx, collection)
	if err != nil {
		return err
	}
	return store.UpdateVersion(ctx, coll, rec.OrderID, rec.Version, bson.M{
		"$set": bson.M{"status": status, "reason": reason, "unknowns": unknowns, "updatedAt": now},
	})
}
