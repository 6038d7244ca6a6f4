package store

import (
	"context"
	"errors"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// ErrConflict means a version-checked write found another version: someone else won.
var ErrConflict = errors.New("store: the document changed since it was read")

// IsDuplicateKey reports a unique index violation, from MongoDB or from lungo (whose error
// mongo.IsDuplicateKeyError does not recognise).
func IsDuplicateKey(err error) bool {
	return mongo.IsDuplicateKeyError(err) || lungo.IsUniquenessError(err)
}

// ParseID turns a 24-hex id into an ObjectID; ok is false for anything else.
func ParseID(s string) (id primitive.ObjectID, ok bool) {
	id, err := primitive.ObjectIDFromHex(s)
	return id, err == nil && id.Hex() == s
}

// UpdateVersion applies update to the document {_id: id, version: version} and moves its
// version to version+1, in one atomic write. No match returns ErrConflict.
// update is a MongoDB update document ({"$set": ...}); it must not touch "version" itself.
func UpdateVersion(ctx context.Context, coll lungo.ICollection, id any, version int64, update bson.M) error {
	return UpdateVersionWhere(ctx, coll, bson.M{"_id": id}, version, update)
}

// EnsureIndex creates an index unless it exists; both engines accept a repeat.
func EnsureIndex(ctx context.Context, coll lungo.ICollection, keys bson.D, unique bool) error {
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: options.Index().SetUnique(unique)})
	return err
}
