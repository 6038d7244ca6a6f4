package outbox

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// clearTimeout bounds one write of queued clears.
const clearTimeout = 10 * time.Second

// clearing is one document's published events to remove from its outbox, and where the
// result of the write that removes them goes.
type clearing struct {
	collection string
	id         any
	events     []string // ids
	done       chan error
}

// clearQueue groups clears into few writes: while one write is in flight, the clears that
// arrive wait, and all of them go in the next write, a single bulk write per collection. A
// lone request is written at once; under load one round trip to the database clears the
// events of many requests. (An UpdateOne per event was the largest part of the outbox's CPU
// per request on a Mongo-wire server, more than the publish.)
type clearQueue struct {
	mu      sync.Mutex
	queued  []*clearing
	writing bool
	writes  atomic.Int64 // bulk writes so far (the tests read it)
}

// clear removes the events (by id) from the outbox of document id of collection, and returns
// when the write that does it is done, or ctx ends.
func (o *Outbox) clear(ctx context.Context, collection string, id any, events ...string) error {
	c := &clearing{collection: collection, id: id, events: events, done: make(chan error, 1)}
	q := &o.clears
	q.mu.Lock()
	q.queued = append(q.queued, c)
	if !q.writing {
		q.writing = true
		go o.writeQueued()
	}
	q.mu.Unlock()
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeQueued writes the queued clears, batch after batch, until none is left.
func (o *Outbox) writeQueued() {
	q := &o.clears
	for {
		q.mu.Lock()
		batch := q.queued
		q.queued = nil
		if len(batch) == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		byCollection := map[string][]*clearing{}
		for _, c := range batch {
			byCollection[c.collection] = append(byCollection[c.collection], c)
		}
		for name, cs := range byCollection {
			err := o.write(name, cs)
			for _, c := range cs {
				c.done <- err
			}
		}
	}
}

// write removes the clears' events in one unordered bulk write. An error fails the whole
// batch: its events stay pending for Flush, and publishing one twice is harmless.
func (o *Outbox) write(collection string, cs []*clearing) error {
	ctx, cancel := context.WithTimeout(context.Background(), clearTimeout)
	defer cancel()
	coll, err := o.db.Collection(ctx, collection)
	if err != nil {
		return err
	}
	models := make([]mongo.WriteModel, len(cs))
	for i, c := range cs {
		unset := bson.M{}
		for _, id := range c.events {
			unset[Field+"."+id] = ""
		}
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.M{"_id": c.id}).SetUpdate(bson.M{"$unset": unset})
	}
	o.clears.writes.Add(1)
	_, err = coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return err
}
