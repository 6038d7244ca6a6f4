package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/functions/internal/store"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// engines returns a fresh database per engine, each through the production store code:
// lungo in memory and on file, and a Mongo-wire server (testenv.WireStore: FerretDB started
// for the test, or the server of MONGO_TEST_URL, e.g. mongodb://127.0.0.1:27017).
func engines(t *testing.T, setup store.Setup) map[string]*store.DB {
	t.Helper()
	dbs := map[string]*store.DB{
		"memory": store.New("memory:", "test", setup),
		"file":   store.New("file:"+t.TempDir(), "test", setup),
	}
	for _, db := range dbs {
		t.Cleanup(func() { _ = db.Close(context.Background()) })
	}
	dbs["wire"] = testenv.WireStore(t, "test", setup)
	return dbs
}

// versioned inserts a document at version 0 with the given fields into a collection of db.
func versioned(t *testing.T, db *store.DB, collection string, fields bson.M) (lungo.ICollection, primitive.ObjectID) {
	t.Helper()
	coll, err := db.Collection(context.Background(), collection)
	if err != nil {
		t.Fatal(err)
	}
	id := primitive.NewObjectID()
	doc := bson.M{"_id": id, "version": int64(0)}
	for k, v := range fields {
		doc[k] = v
	}
	if _, err := coll.InsertOne(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	return coll, id
}

func uniqueEmail(ctx context.Context, db lungo.IDatabase) error {
	return store.EnsureIndex(ctx, db.Collection("users"), bson.D{{Key: "email", Value: 1}}, true)
}

func TestConcurrentVersionedUpdatesHaveExactlyOneWinner(t *testing.T) {
	for name, db := range engines(t, nil) {
		t.Run(name, func(t *testing.T) {
			testenv.RequireAtomic(t, db)
			ctx := context.Background()
			for round := 0; round < 5; round++ {
				// Arrange: one document at version 0.
				coll, id := versioned(t, db, "tickets", bson.M{"reservedBy": nil})

				// Act: 50 writers race to move it from version 0.
				var wins, conflicts atomic.Int32
				var wg sync.WaitGroup
				for i := 0; i < 50; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := store.UpdateVersion(ctx, coll, id, 0, bson.M{"$set": bson.M{"reservedBy": i}})
						switch {
						case err == nil:
							wins.Add(1)
						case errors.Is(err, store.ErrConflict):
							conflicts.Add(1)
						default:
							t.Error(err)
						}
					}()
				}
				testenv.Wait(t, &wg, 5*time.Minute, "the 50 racing updates")

				// Assert
				var doc struct{ Version int64 }
				if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&doc); err != nil {
					t.Fatal(err)
				}
				if wins.Load() != 1 || conflicts.Load() != 49 || doc.Version != 1 {
					t.Fatalf("round %d: %d winners, %d conflicts, version %d; want 1, 49, 1", round, wins.Load(), conflicts.Load(), doc.Version)
				}
			}
		})
	}
}

func TestDuplicateKeyIsDetectedOnEveryEngine(t *testing.T) {
	for name, db := range engines(t, uniqueEmail) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			users, err := db.Collection(ctx, "users")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := users.InsertOne(ctx, bson.M{"email": "ann@example.com"}); err != nil {
				t.Fatal(err)
			}
			_, err = users.InsertOne(ctx, bson.M{"email": "ann@example.com"})
			if !store.IsDuplicateKey(err) {
				t.Fatalf("second insert: %v; want a duplicate key error", err)
			}
			if store.IsDuplicateKey(errors.New("connection refused")) || store.IsDuplicateKey(nil) {
				t.Fatal("other errors are not duplicate keys")
			}
		})
	}
}

func TestFileStoreKeepsDataAcrossReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := store.New("file:"+dir, "tickets", uniqueEmail)
	coll, err := db.Collection(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.M{"email": "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tickets.bson")); err != nil {
		t.Fatalf("one file per database: %v", err)
	}

	reopened := store.New("file:"+dir, "tickets", uniqueEmail)
	defer reopened.Close(ctx)
	coll, err = reopened.Collection(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := coll.CountDocuments(ctx, bson.M{"email": "ann@example.com"}); err != nil || n != 1 {
		t.Fatalf("after reopen: %d documents, %v", n, err)
	}
	if _, err := coll.InsertOne(ctx, bson.M{"email": "ann@example.com"}); !store.IsDuplicateKey(err) {
		t.Fatalf("the unique index survives a reopen: %v", err)
	}
}

func TestOpeningIsLazyAndRetried(t *testing.T) {
	ctx := context.Background()
	calls := 0
	flaky := func(context.Context, lungo.IDatabase) error {
		calls++
		if calls == 1 {
			return errors.New("not yet")
		}
		return nil
	}
	db := store.New("memory:", "lazy", flaky)
	if calls != 0 {
		t.Fatal("New did I/O")
	}
	if _, err := db.Database(ctx); err == nil {
		t.Fatal("a failed setup must fail the call")
	}
	if _, err := db.Database(ctx); err != nil {
		t.Fatalf("second call retries: %v", err)
	}
	if _, err := store.New("postgres://x", "bad", nil).Database(ctx); err == nil {
		t.Fatal("an unknown URL scheme must fail")
	}
}

func TestParseID(t *testing.T) {
	id := primitive.NewObjectID()
	if got, ok := store.ParseID(id.Hex()); !ok || got != id {
		t.Fatal("a valid id did not parse")
	}
	for _, bad := range []string{"", "xyz", "65A1B2C3D4E5F60718293A4B", id.Hex() + "0"} {
		if _, ok := store.ParseID(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
