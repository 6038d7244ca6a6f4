// throttle.go: counting attempts per key in the auth database, so that every replica of auth
// shares one count, and the limits sign-in and sign-up apply.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/tickit/tickit/functions/internal/store"
)

const throttleCollection = "throttle"

// limit allows max attempts per key in a fixed window that starts with the first attempt.
type limit struct {
	name   string
	max    int64
	window time.Duration
}

// limits are the rules; the README's "Throttling" says why each is what it is.
type limits struct {
	pair    limit         // failed sign-ins per (account, client)
	client  limit         // failed sign-ins per client, any account it is not known to
	account limit         // failed sign-ins per account, from clients it does not know
	signUp  limit         // sign-ups that found the email taken, per client
	known   time.Duration // how long a client stays known to an account after signing in to it
}

var defaultLimits = limits{
	pair:    limit{"signin-pair", 5, 15 * time.Minute},
	client:  limit{"signin-client", 50, 15 * time.Minute},
	account: limit{"signin-account", 100, 15 * time.Minute},
	signUp:  limit{"signup-client", 10, 15 * time.Minute},
	known:   30 * 24 * time.Hour,
}

// counter is one key's count in its window; a known client is a counter whose resetAt is
// when it stops being known.
type counter struct {
	ID      string    `bson:"_id"`
	Count   int64     `bson:"count"`
	ResetAt time.Time `bson:"resetAt"`
}

// counted is one limit applied to one key.
type counted struct {
	limit limit
	key   string
}

func (c counted) id() string { return c.limit.name + "|" + c.key }

// throttle keeps the counters.
type throttle struct {
	db  *store.DB
	now func() time.Time
}

// take counts one attempt against each rule, in order, each with one atomic conditional
// update, so concurrent attempts on any replica never pass a limit. When a rule is full it
// gives back what it took and returns how long until that rule's window ends (> 0).
func (t throttle) take(ctx context.Context, rules ...counted) (retryAfter time.Duration, err error) {
	coll, err := t.db.Collection(ctx, throttleCollection)
	if err != nil {
		return 0, err
	}
	for i, c := range rules {
		retryAfter, err = takeOne(ctx, coll, c, t.now())
		if err != nil || retryAfter > 0 {
			t.giveBack(ctx, rules[:i]...)
			return retryAfter, err
		}
	}
	return 0, nil
}

// takeOne counts one attempt for c: within the window while below the limit, or in a new
// window once the last one ended. A full window returns the time left in it.
func takeOne(ctx context.Context, coll lungo.ICollection, c counted, now time.Time) (time.Duration, error) {
	id := c.id()
	for range 5 { // a concurrent first attempt may insert the counter between two steps
		res, err := coll.UpdateOne(ctx, bson.M{"_id": id, "resetAt": bson.M{"$gt": now}, "count": bson.M{"$lt": c.limit.max}},
			bson.M{"$inc": bson.M{"count": 1}})
		if err != nil {
			return 0, err
		}
		if res.MatchedCount == 1 {
			return 0, nil
		}
		res, err = coll.UpdateOne(ctx, bson.M{"_id": id, "resetAt": bson.M{"$lte": now}},
			bson.M{"$set": bson.M{"count": 1, "resetAt": now.Add(c.limit.window)}})
		if err != nil {
			return 0, err
		}
		if res.MatchedCount == 1 {
			return 0, nil
		}
		var old counter
		err = coll.FindOne(ctx, bson.M{"_id": id}).Decode(&old)
		switch {
		case err == nil && old.ResetAt.After(now) && old.Count >= c.limit.max:
			return old.ResetAt.Sub(now), nil
		case err == nil:
			continue // changed since the updates looked
		case !errors.Is(err, mongo.ErrNoDocuments):
			return 0, err
		}
		_, err = coll.InsertOne(ctx, counter{ID: id, Count: 1, ResetAt: now.Add(c.limit.window)})
		if err == nil {
			return 0, nil
		}
		if !store.IsDuplicateKey(err) {
			return 0, err
		}
	}
	return 0, fmt.Errorf("throttle %s: the counter kept changing", id)
}

// full reports how long until c's window ends when it is full, without counting anything.
func (t throttle) full(ctx context.Context, c counted) (time.Duration, error) {
	coll, err := t.db.Collection(ctx, throttleCollection)
	if err != nil {
		return 0, err
	}
	var old counter
	err = coll.FindOne(ctx, bson.M{"_id": c.id()}).Decode(&old)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return 0, nil
	case err != nil:
		return 0, err
	}
	if now := t.now(); old.ResetAt.After(now) && old.Count >= c.limit.max {
		return old.ResetAt.Sub(now), nil
	}
	return 0, nil
}

// count counts an attempt found to be a failure after the fact (nothing when c is full
// already); a failure to write only leaves it uncounted.
func (t throttle) count(ctx context.Context, c counted) { _, _ = t.take(ctx, c) }

// giveBack uncounts attempts that turned out not to be failures (a right password, an
// account created). A failure to write only leaves the attempt counted.
func (t throttle) giveBack(ctx context.Context, rules ...counted) {
	coll, err := t.db.Collection(ctx, throttleCollection)
	if err != nil {
		return
	}
	for _, c := range rules {
		_, _ = coll.UpdateOne(ctx, bson.M{"_id": c.id(), "count": bson.M{"$gt": 0}}, bson.M{"$inc": bson.M{"count": -1}})
	}
}

// forget clears a rule's count (an account and client pair after a right password).
func (t throttle) forget(ctx context.Context, c counted) error {
	coll, err := t.db.Collection(ctx, throttleCollection)
	if err != nil {
		return err
	}
	_, err = coll.DeleteOne(ctx, bson.M{"_id": c.id()})
	return err
}

// knownID names the record that says a client signed in to an account.
func knownID(email, client string) string { return "known|" + email + "|" + client }

// known reports whether client signed in to the account of email within limits.known.
func (t throttle) known(ctx context.Context, email, client string) (bool, error) {
	coll, err := t.db.Collection(ctx, throttleCollection)
	if err != nil {
		return false, err
	}
	err = coll.FindOne(ctx, bson.M{"_id": knownID(email, client), "resetAt": bson.M{"$gt": t.now()}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// remember makes client known to the account of email for the next d.
func (t throttle) remember(ctx context.Context, email, client string, d time.Duration) error {
	coll, err := t.db.Collection(ctx, throttleCollection)
	if err != nil {
		return err
	}
	_, err = coll.UpdateOne(ctx, bson.M{"_id": knownID(email, client)},
		bson.M{"$set": bson.M{"resetAt": t.now().Add(d)}}, options.Update().SetUpsert(true))
	return err
}
