package outbox_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/256dpi/lungo"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestDeliverPublishesAndClears(t *testing.T) {
	testenv.OnEachStore(t, testDeliverPublishesAndClears)
}

func testDeliverPublishesAndClears(t *testing.T) {
	// Arrange
	ctx := testenv.Context(t)
	db := testenv.Store(t, "tickets", nil)
	sink := testenv.NewSink(t)
	box := outbox.New(sink.Publisher(t), db, "tickets")
	coll, _ := db.Collection(ctx, "tickets")
	id := primitive.NewObjectID()
	e1 := events.New(events.ExpirationCompleted{OrderID: id.Hex()})
	e2 := events.New(events.ExpirationCompleted{OrderID: id.Hex()})
	update := outbox.Add(ctx, bson.M{"$set": bson.M{"title": "t"}}, e1, e2)
	if _, err := coll.UpdateOne(ctx, bson.M{"_id": id}, update, upsert()); err != nil {
		t.Fatal(err)
	}
	if n := pendingCount(t, ctx, coll, id); n != 2 {
		t.Fatalf("%d pending after the write, want 2", n)
	}

	// Act
	box.Deliver(ctx, "tickets", id, e1, e2)

	// Assert
	if got := sink.Events(""); len(got) != 2 || got[0].ID() != e1.ID() || got[1].ID() != e2.ID() {
		t.Fatalf("published %v", ids(got))
	}
	if n := pendingCount(t, ctx, coll, id); n != 0 {
		t.Fatalf("%d still pending", n)
	}
	if sent, err := box.Flush(ctx); err != nil || sent != 0 {
		t.Fatalf("nothing left to flush, flushed %d (%v)", sent, err)
	}
}

func TestLeftoverIsRepublishedAndClearedExactlyOnce(t *testing.T) {
	testenv.OnEachStore(t, testLeftoverIsRepublishedAndClearedExactlyOnce)
}

func testLeftoverIsRepublishedAndClearedExactlyOnce(t *testing.T) {
	// Arrange: the Broker is down when the state changes.
	ctx := testenv.Context(t)
	db := testenv.Store(t, "tickets", nil)
	sink := testenv.NewSink(t)
	box := outbox.New(sink.Publisher(t), db, "tickets")
	coll, _ := db.Collection(ctx, "tickets")
	id := primitive.NewObjectID()
	// Versions 1 and 2 of one entity: they must leave in that order.
	v1 := events.New(events.OrderCancelled{ID: id.Hex(), Version: 1, Ticket: events.OrderTicket{ID: id.Hex()}})
	v2 := events.New(events.OrderCancelled{ID: id.Hex(), Version: 2, Ticket: events.OrderTicket{ID: id.Hex()}})
	other := primitive.NewObjectID()
	if _, err := coll.InsertOne(ctx, bson.M{"_id": other, "title": "nothing pending"}); err != nil {
		t.Fatal(err)
	}
	sink.Fail(http.StatusServiceUnavailable, -1)
	if _, err := coll.UpdateOne(ctx, bson.M{"_id": id}, outbox.Add(ctx, bson.M{}, v1, v2), upsert()); err != nil {
		t.Fatal(err)
	}
	box.Deliver(ctx, "tickets", id, v1, v2)
	if len(sink.Events("")) != 0 || pendingCount(t, ctx, coll, id) != 2 {
		t.Fatal("with the Broker down both events must stay pending")
	}

	// Act: the Broker is back; two flushes run one after the other.
	sink.Recover()
	first, err1 := box.Flush(ctx)
	second, err2 := box.Flush(ctx)

	// Assert
	if err1 != nil || err2 != nil || first != 2 || second != 0 {
		t.Fatalf("flushes sent %d (%v) then %d (%v); want 2 then 0", first, err1, second, err2)
	}
	got := sink.Events("")
	if len(got) != 2 || got[0].ID() != v1.ID() || got[1].ID() != v2.ID() {
		t.Fatalf("published %v, want [%s %s] in order", ids(got), v1.ID(), v2.ID())
	}
	if p, err := events.Decode[events.OrderCancelled](got[1]); err != nil || p.Version != 2 {
		t.Fatalf("the republished event lost its payload: %+v %v", p, err)
	}
	if pendingCount(t, ctx, coll, id) != 0 {
		t.Fatal("flushed events still pending")
	}
}

func TestConcurrentDeliveriesPublishAndClearEveryEvent(t *testing.T) {
	testenv.OnEachStore(t, testConcurrentDeliveriesPublishAndClearEveryEvent)
}

func testConcurrentDeliveriesPublishAndClearEveryEvent(t *testing.T) {
	// Arrange: 100 documents, each with an event pending.
	ctx := testenv.Context(t)
	db := testenv.Store(t, "tickets", nil)
	sink := testenv.NewSink(t)
	box := outbox.New(sink.Publisher(t), db, "tickets")
	coll, _ := db.Collection(ctx, "tickets")
	ids, evs := outbox.InsertPending(t, coll, 100)

	// Act: 100 requests deliver at once (their clears share writes).
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); box.Deliver(ctx, "tickets", ids[i], evs[i]) }()
	}
	testenv.Wait(t, &wg, time.Minute, "100 deliveries")

	// Assert: each event went out once, and nothing is left for a flush.
	if got := sink.Events(""); len(got) != len(ids) {
		t.Fatalf("published %d events, want %d", len(got), len(ids))
	}
	for _, id := range ids {
		if n := pendingCount(t, ctx, coll, id); n != 0 {
			t.Fatalf("document %s: %d still pending", id.Hex(), n)
		}
	}
	if sent, err := box.Flush(ctx); err != nil || sent != 0 {
		t.Fatalf("nothing left to flush, flushed %d (%v)", sent, err)
	}
}

func upsert() *options.UpdateOptions { return options.Update().SetUpsert(true) }

func pendingCount(t *testing.T, ctx context.Context, coll lungo.ICollection, id primitive.ObjectID) int {
	t.Helper()
	var doc struct {
		Outbox bson.M `bson:"outbox"`
	}
	if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return len(doc.Outbox)
}

func ids(evs []cloudevents.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID())
	}
	return out
}
