package store_test

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/tickit/tickit/functions/internal/store"
)

func TestUpdateVersionWhereRequiresTheExtraFilterToo(t *testing.T) {
	for name, db := range engines(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			coll, id := versioned(t, db, "tickets", bson.M{"cancelled": bson.A{"a"}})
			hold := func(order string) error {
				return store.UpdateVersionWhere(ctx, coll, bson.M{"_id": id, "cancelled": bson.M{"$nin": bson.A{order}}}, 0,
					bson.M{"$set": bson.M{"holder": order}})
			}

			// The version matches but "a" is in the array: no write.
			if err := hold("a"); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("extra filter not met: got %v, want store.ErrConflict", err)
			}
			if err := hold("b"); err != nil {
				t.Fatalf("both met: %v", err)
			}
			var doc struct {
				Version int64  `bson:"version"`
				Holder  string `bson:"holder"`
			}
			if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&doc); err != nil {
				t.Fatal(err)
			}
			if doc.Version != 1 || doc.Holder != "b" {
				t.Fatalf("document %+v, want version 1 held by b", doc)
			}
			// The old version no longer matches, whatever the rest of the filter says.
			if err := hold("c"); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("stale version: got %v, want store.ErrConflict", err)
			}
		})
	}
}
