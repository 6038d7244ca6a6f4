package outbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/256dpi/lungo"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// InsertPending inserts n documents into coll, each with one event pending (the outbox tests
// of both packages use it).
func InsertPending(t *testing.T, coll lungo.ICollection, n int) ([]primitive.ObjectID, []cloudevents.Event) {
	t.Helper()
	ids := make([]primitive.ObjectID, n)
	evs := make([]cloudevents.Event, n)
	for i := range ids {
		ids[i] = primitive.NewObjectID()
		evs[i] = events.New(events.ExpirationCompleted{OrderID: ids[i].Hex()})
		if _, err := coll.InsertOne(testenv.Context(t), bson.M{"_id": ids[i], Field: Entries(testenv.Context(t), evs[i])}); err != nil {
			t.Fatal(err)
		}
	}
	return ids, evs
}

func TestClearsQueuedDuringAWriteGoInOneWrite(t *testing.T) {
	testenv.OnEachStore(t, testClearsQueuedDuringAWriteGoInOneWrite)
}

func testClearsQueuedDuringAWriteGoInOneWrite(t *testing.T) {
	// Arrange: 50 documents with an event pending each, and a write in flight (held).
	ctx := testenv.Context(t)
	db := testenv.Store(t, "tickets", nil)
	o := New(nil, db, "tickets")
	coll, _ := db.Collection(ctx, "tickets")
	ids, evs := InsertPending(t, coll, 50)
	o.clears.writing = true

	// Act: 50 clears arrive while it is in flight; then it ends and the writer takes the queue.
	errs := make(chan error, len(ids))
	for i := range ids {
		go func() { errs <- o.clear(ctx, "tickets", ids[i], evs[i].ID()) }()
	}
	deadline := time.Now().Add(time.Minute)
	for queued := 0; queued < len(ids); {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d clears queued within a minute", queued, len(ids))
		}
		time.Sleep(time.Millisecond)
		o.clears.mu.Lock()
		queued = len(o.clears.queued)
		o.clears.mu.Unlock()
	}
	go o.writeQueued()

	// Assert: one bulk write cleared all 50, and each caller heard so.
	for range ids {
		if err := testenv.Receive(t, errs, time.Minute, "a clear's result"); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.clears.writes.Load(); n != 1 {
		t.Fatalf("%d writes for 50 queued clears, want 1", n)
	}
	if n, err := coll.CountDocuments(ctx, bson.M{Field: bson.M{"$exists": true, "$ne": bson.M{}}}); err != nil || n != 0 {
		t.Fatalf("%d documents still have events pending (%v)", n, err)
	}
}

func TestAClearWhoseContextEndsReturnsAndTheWriteStillHappens(t *testing.T) {
	ctx := testenv.Context(t)
	db := testenv.Store(t, "tickets", nil)
	o := New(nil, db, "tickets")
	coll, _ := db.Collection(ctx, "tickets")
	id := primitive.NewObjectID()
	e := events.New(events.ExpirationCompleted{OrderID: id.Hex()})
	if _, err := coll.InsertOne(ctx, bson.M{"_id": id, Field: Entries(ctx, e)}); err != nil {
		t.Fatal(err)
	}
	o.clears.writing = true // a write in flight that takes longer than the caller waits

	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := o.clear(gone, "tickets", id, e.ID()); err == nil {
		t.Fatal("a clear whose context ended reported success before its write")
	}
	o.writeQueued()
	var doc bson.M
	if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if pending := doc[Field].(bson.M); len(pending) != 0 {
		t.Fatalf("pending after the queued write: %v", fmt.Sprint(pending))
	}
}
