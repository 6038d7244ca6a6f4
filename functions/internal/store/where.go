package store

import (
	"context"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/bson"
)

// UpdateVersionWhere is UpdateVersion for a write that also depends on other fields than the
// version: the document must match filter ({"_id": id, ...}) as well as {version: version}.
// No match returns ErrConflict; the caller re-reads and decides again.
func UpdateVersionWhere(ctx context.Context, coll lungo.ICollection, filter bson.M, version int64, update bson.M) error {
	f := bson.M{"version": version}
	for k, v := range filter {
		f[k] = v
	}
	u := bson.M{}
	for op, fields := range update {
		u[op] = fields
	}
	// A caller's own $inc ({"attempts": 1}) joins the version's instead of replacing it.
	inc := bson.M{"version": 1}
	if more, ok := update["$inc"].(bson.M); ok {
		for k, v := range more {
			inc[k] = v
		}
	}
	u["$inc"] = inc
	res, err := coll.UpdateOne(ctx, f, u)
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		return ErrConflict
	}
	return nil
}
