// store.go: persistence of the ticket replicas and the orders: the queries, the reservation
// compare-and-set and the version-checked transitions, nothing else.
package main

import (
	"context"
	"errors"
	"time"

	"github.com/256dpi/lungo"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/store"
)

// Collections of the orders database.
const (
	ticketsCollection = "tickets"
	ordersCollection  = "orders"
)

// errMissing says a document does not exist; callers turn it into their own answer.
var errMissing = errors.New("orders: no such document")

// setup creates the index the order list reads by.
func setup(ctx context.Context, db lungo.IDatabase) error {
	return store.EnsureIndex(ctx, db.Collection(ordersCollection), bson.D{{Key: "userId", Value: 1}, {Key: "createdAt", Value: -1}}, false)
}

// storage reads and writes the orders database.
type storage struct {
	// open returns a collection of the database (store.DB.Collection); tests wrap it to
	// make a write fail at a chosen point.
	open func(ctx context.Context, name string) (lungo.ICollection, error)
}

func newStorage(db *store.DB) storage { return storage{open: db.Collection} }

func (s storage) coll(ctx context.Context, name string) (lungo.ICollection, error) {
	return s.open(ctx, name)
}

// ticket returns the replica of ticket id, or errMissing.
func (s storage) ticket(ctx context.Context, id primitive.ObjectID) (Ticket, error) {
	var t Ticket
	return t, s.findOne(ctx, ticketsCollection, id, &t)
}

// order returns order id, or errMissing.
func (s storage) order(ctx context.Context, id primitive.ObjectID) (Order, error) {
	var o Order
	return o, s.findOne(ctx, ordersCollection, id, &o)
}

func (s storage) findOne(ctx context.Context, collection string, id primitive.ObjectID, v any) error {
	c, err := s.coll(ctx, collection)
	if err != nil {
		return err
	}
	err = c.FindOne(ctx, bson.M{"_id": id}).Decode(v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return errMissing
	}
	return err
}

// insertTicket stores a new replica; inserted is false when it existed already.
func (s storage) insertTicket(ctx context.Context, t Ticket) (inserted bool, err error) {
	c, err := s.coll(ctx, ticketsCollection)
	if err != nil {
		return false, err
	}
	if _, err := c.InsertOne(ctx, t); err != nil {
		if store.IsDuplicateKey(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// updateTicket applies a tickets edit to the replica at version-1 (moving it to version).
// It never touches the reservation, which is orders' own. No match returns store.ErrConflict.
func (s storage) updateTicket(ctx context.Context, id primitive.ObjectID, version int64, set bson.M) error {
	c, err := s.coll(ctx, ticketsCollection)
	if err != nil {
		return err
	}
	return store.UpdateVersion(ctx, c, id, version-1, bson.M{"$set": set})
}

// reserve is THE reservation: one atomic compare-and-set of the replica from holder (nil: free)
// to order, until the order's expiry. ok is false when the ticket changed hands meanwhile.
func (s storage) reserve(ctx context.Context, ticket primitive.ObjectID, holder *primitive.ObjectID, order primitive.ObjectID, until time.Time) (ok bool, err error) {
	c, err := s.coll(ctx, ticketsCollection)
	if err != nil {
		return false, err
	}
	res, err := c.UpdateOne(ctx,
		bson.M{"_id": ticket, "reservedBy": holder},
		bson.M{"$set": bson.M{"reservedBy": order, "reservedUntil": until}})
	if err != nil {
		return false, err
	}
	return res.MatchedCount == 1, nil
}

// release frees the ticket if, and only if, order still holds it: a stale cancel never frees
// somebody else's reservation.
func (s storage) release(ctx context.Context, ticket, order primitive.ObjectID) error {
	c, err := s.coll(ctx, ticketsCollection)
	if err != nil {
		return err
	}
	_, err = c.UpdateOne(ctx,
		bson.M{"_id": ticket, "reservedBy": order},
		bson.M{"$set": bson.M{"reservedBy": nil, "reservedUntil": time.Time{}}})
	return err
}

// confirm records that tickets reserved the ticket for order id (Order.Confirmed). It changes
// no version: it is a fact learnt, not a transition, and never goes back.
func (s storage) confirm(ctx context.Context, id primitive.ObjectID) error {
	c, err := s.coll(ctx, ordersCollection)
	if err != nil {
		return err
	}
	_, err = c.UpdateOne(ctx, bson.M{"_id": id, "confirmed": bson.M{"$ne": true}}, bson.M{"$set": bson.M{"confirmed": true}})
	return err
}

// insertOrder stores a new order with its order.created event pending in the same write.
func (s storage) insertOrder(ctx context.Context, o Order, created cloudevents.Event) error {
	c, err := s.coll(ctx, ordersCollection)
	if err != nil {
		return err
	}
	_, err = c.InsertOne(ctx, struct {
		Order  `bson:",inline"`
		Outbox bson.M `bson:"outbox"`
	}{o, outbox.Entries(ctx, created)})
	return err
}

// transition moves order o (at its read version) to status, setting the extra fields, with
// its event pending in the same write. store.ErrConflict: someone else moved it first.
func (s storage) transition(ctx context.Context, o Order, status string, set bson.M, e cloudevents.Event) error {
	c, err := s.coll(ctx, ordersCollection)
	if err != nil {
		return err
	}
	fields := bson.M{"status": status}
	for k, v := range set {
		fields[k] = v
	}
	return store.UpdateVersion(ctx, c, o.ID, o.Version, outbox.Add(ctx, bson.M{"$set": fields}, e))
}

// ordersOf returns the user's orders, newest first.
func (s storage) ordersOf(ctx context.Context, userID string) ([]Order, error) {
	c, err := s.coll(ctx, ordersCollection)
	if err != nil {
		return nil, err
	}
	cur, err := c.Find(ctx, bson.M{"userId": userID},
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}))
	if err != nil {
		return nil, err
	}
	orders := []Order{}
	return orders, cur.All(ctx, &orders)
}
