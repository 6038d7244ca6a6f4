// Package outbox makes "change the state and publish the event" safe against a Broker outage:
// the event is written into the changed document in the same update (field "outbox", keyed by
// event id), published, then removed. Whatever stays behind is published again by Flush.
// Consumers drop repeats by event id and version, so publishing twice is harmless.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/store"
	"github.com/tickit/tickit/functions/internal/tracing"
)

// Field is the document field that holds pending events.
const Field = "outbox"

// Publisher is what the outbox publishes through (publish.Publisher in production).
type Publisher interface {
	Publish(ctx context.Context, e cloudevents.Event) error
}

// Outbox delivers the events pending in the named collections of one database.
type Outbox struct {
	pub         Publisher
	db          *store.DB
	collections []string

	mu       sync.Mutex
	flushing bool
	clears   clearQueue
}

// New returns the outbox of the given collections.
func New(pub Publisher, db *store.DB, collections ...string) *Outbox {
	return &Outbox{pub: pub, db: db, collections: collections}
}

// Add records events as pending in update (a MongoDB update document, changed in place and
// returned), so that they are stored by the same write as the state change. Each is stored with
// ctx's trace context (tracing.Stamp), so that a later Flush still belongs to the request that
// caused it.
func Add(ctx context.Context, update bson.M, evs ...cloudevents.Event) bson.M {
	set, _ := update["$set"].(bson.M)
	if set == nil {
		set = bson.M{}
		update["$set"] = set
	}
	for _, e := range evs {
		set[Field+"."+e.ID()] = encode(ctx, e)
	}
	return update
}

// encode is how a pending event is stored: structured mode JSON, which our own events always
// marshal to, with the trace context of ctx in its distributed-tracing extension.
func encode(ctx context.Context, e cloudevents.Event) string {
	tracing.Stamp(ctx, &e)
	b, _ := json.Marshal(e)
	return string(b)
}

// Deliver publishes events already recorded on document id of collection and clears each one
// that went out. A failure is logged and left for Flush: the caller's change has happened, and
// the event will follow it.
func (o *Outbox) Deliver(ctx context.Context, collection string, id any, evs ...cloudevents.Event) {
	if err := o.publish(ctx, collection, id, evs); err != nil {
		logging.FromContext(ctx).Warnw("event left in the outbox for a later flush", "error", err)
		o.retrySoon()
	}
}

// publish sends evs in order, stopping at the first that does not go out, and clears those
// that went out from document id.
func (o *Outbox) publish(ctx context.Context, collection string, id any, evs []cloudevents.Event) error {
	var sent []string
	var err error
	for _, e := range evs {
		if err = o.pub.Publish(ctx, e); err != nil {
			break
		}
		sent = append(sent, e.ID())
	}
	if len(sent) > 0 {
		err = errors.Join(err, o.clear(ctx, collection, id, sent...))
	}
	return err
}

// Flush publishes every pending event of every collection and clears the ones that went out.
// It returns how many were published.
func (o *Outbox) Flush(ctx context.Context) (int, error) {
	sent := 0
	for _, name := range o.collections {
		coll, err := o.db.Collection(ctx, name)
		if err != nil {
			return sent, err
		}
		cur, err := coll.Find(ctx, bson.M{Field: bson.M{"$exists": true, "$ne": bson.M{}}})
		if err != nil {
			return sent, err
		}
		var docs []struct {
			ID      any               `bson:"_id"`
			Pending map[string]string `bson:"outbox"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return sent, err
		}
		for _, d := range docs {
			evs, err := decodeInOrder(d.Pending)
			if err != nil {
				return sent, err
			}
			if err := o.publish(ctx, name, d.ID, evs); err != nil {
				return sent, err
			}
			sent += len(evs)
		}
	}
	return sent, nil
}

// retrySoon keeps flushing in the background, with a growing pause, until nothing is left
// or about a minute has passed (the process may be scaled to zero after that; the next
// request's Flush takes over then).
func (o *Outbox) retrySoon() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.flushing {
		return
	}
	o.flushing = true
	go func() {
		defer func() { o.mu.Lock(); o.flushing = false; o.mu.Unlock() }()
		for wait := time.Second; wait <= 32*time.Second; wait *= 2 {
			time.Sleep(wait)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := o.Flush(ctx)
			cancel()
			if err == nil {
				return
			}
		}
	}()
}

// decodeInOrder returns a document's pending events oldest first. Neither engine keeps the
// order of fields set by one update (it is a map), but one entity's versions must go out in
// sequence, and each was created after the one before it.
func decodeInOrder(pending map[string]string) ([]cloudevents.Event, error) {
	evs := make([]cloudevents.Event, 0, len(pending))
	for _, raw := range pending {
		var e cloudevents.Event
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	slices.SortStableFunc(evs, func(a, b cloudevents.Event) int { return a.Time().Compare(b.Time()) })
	return evs, nil
}
