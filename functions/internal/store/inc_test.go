package store_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/tickit/tickit/functions/internal/store"
)

func TestAnUpdateWithItsOwnIncStillMovesTheVersion(t *testing.T) {
	for name, db := range engines(t, nil) {
		t.Run(name, func(t *testing.T) {
			// Arrange
			ctx := context.Background()
			coll, id := versioned(t, db, "emails", bson.M{"attempts": int64(1)})

			// Act
			err := store.UpdateVersion(ctx, coll, id, 0, bson.M{"$inc": bson.M{"attempts": 1}, "$set": bson.M{"status": "sending"}})

			// Assert
			var doc struct {
				Version, Attempts int64
				Status            string
			}
			if err == nil {
				err = coll.FindOne(ctx, bson.M{"_id": id}).Decode(&doc)
			}
			if err != nil || doc.Version != 1 || doc.Attempts != 2 || doc.Status != "sending" {
				t.Fatalf("doc %+v (%v), want version 1, attempts 2, status sending", doc, err)
			}
		})
	}
}
