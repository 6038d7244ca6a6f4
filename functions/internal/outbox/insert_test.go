package outbox_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestEntriesOfAnInsertedDocumentAreFlushed(t *testing.T) {
	testenv.OnEachStore(t, testEntriesOfAnInsertedDocumentAreFlushed)
}

func testEntriesOfAnInsertedDocumentAreFlushed(t *testing.T) {
	// Arrange: a document inserted with its pending event, as a function inserts a new entity.
	ctx := testenv.Context(t)
	db := testenv.Store(t, "outbox", nil)
	sink := testenv.NewSink(t)
	coll, err := db.Collection(ctx, "things")
	if err != nil {
		t.Fatal(err)
	}
	e := events.New(events.ExpirationCompleted{OrderID: "65a1b2c3d4e5f60718293a4c"})
	if _, err := coll.InsertOne(ctx, bson.M{"_id": "a", outbox.Field: outbox.Entries(ctx, e)}); err != nil {
		t.Fatal(err)
	}

	// Act
	sent, err := outbox.New(sink.Publisher(t), db, "things").Flush(ctx)

	// Assert
	if err != nil || sent != 1 {
		t.Fatalf("Flush = %d, %v; want 1 event sent", sent, err)
	}
	if got := sink.Events(events.TypeExpirationCompleted); len(got) != 1 || got[0].ID() != e.ID() {
		t.Fatalf("sink got %v, want the inserted event %s", got, e.ID())
	}
	var doc struct {
		Pending map[string]string `bson:"outbox"`
	}
	if err := coll.FindOne(ctx, bson.M{"_id": "a"}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Pending) != 0 {
		t.Fatalf("outbox not cleared after the flush: %v", doc.Pending)
	}
}
