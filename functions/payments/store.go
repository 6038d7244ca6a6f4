// store.go: persistence: the order replica and the payments (claims), with version-checked updates.
package main

import (
	"context"
	"errors"
	"time"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/tickit/tickit/functions/internal/store"
)

// Collections of the payments database.
const (
	ordersCollection   = "orders"
	paymentsCollection = "payments"
)

// setupDB creates the indexes; the unique orderId index is what makes a claim exclusive.
func setupDB(ctx context.Context, db lungo.IDatabase) error {
	payments := db.Collection(paymentsCollection)
	return errors.Join(
		store.EnsureIndex(ctx, payments, bson.D{{Key: "orderId", Value: 1}}, true),
		store.EnsureIndex(ctx, payments, bson.D{{Key: "userId", Value: 1}}, false),
	)
}

// Store holds this function's queries.
type Store struct {
	db *store.DB
}

func (s Store) coll(ctx context.Context, name string) (lungo.ICollection, error) {
	return s.db.Collection(ctx, name)
}

// insertOrder adds an order to the replica; an order already there is left as it is.
func (s Store) insertOrder(ctx context.Context, o Order) error {
	c, err := s.coll(ctx, ordersCollection)
	if err != nil {
		return err
	}
	if _, err = c.InsertOne(ctx, o); store.IsDuplicateKey(err) {
		return nil
	}
	return err
}

// order returns the replica of an order; found is false when no event about it arrived yet.
func (s Store) order(ctx context.Context, id primitive.ObjectID) (o Order, found bool, err error) {
	c, err := s.coll(ctx, ordersCollection)
	if err != nil {
		return o, false, err
	}
	found, err = findOne(ctx, c, bson.M{"_id": id}, &o)
	return o, found, err
}

// setOrderStatus moves the replica from version to version+1 with the new status.
func (s Store) setOrderStatus(ctx context.Context, o Order, status string) error {
	c, err := s.coll(ctx, ordersCollection)
	if err != nil {
		return err
	}
	return store.UpdateVersion(ctx, c, o.ID, o.Version, bson.M{"$set": bson.M{"status": status}})
}

// paymentOf returns the payment (claim) of an order.
func (s Store) paymentOf(ctx context.Context, orderID string) (p Payment, found bool, err error) {
	return s.findPayment(ctx, bson.M{"orderId": orderID})
}

// payment returns a payment by id.
func (s Store) payment(ctx context.Context, id primitive.ObjectID) (p Payment, found bool, err error) {
	return s.findPayment(ctx, bson.M{"_id": id})
}

func (s Store) findPayment(ctx context.Context, filter bson.M) (p Payment, found bool, err error) {
	c, err := s.coll(ctx, paymentsCollection)
	if err != nil {
		return p, false, err
	}
	found, err = findOne(ctx, c, filter, &p)
	return p, found, err
}

// insertPayment stores a first claim; a duplicate key means another request claimed the order.
func (s Store) insertPayment(ctx context.Context, p Payment) error {
	c, err := s.coll(ctx, paymentsCollection)
	if err != nil {
		return err
	}
	_, err = c.InsertOne(ctx, p)
	return err
}

// updatePayment applies update to the payment at version (ErrConflict when it moved on).
func (s Store) updatePayment(ctx context.Context, p Payment, update bson.M) error {
	c, err := s.coll(ctx, paymentsCollection)
	if err != nil {
		return err
	}
	return store.UpdateVersion(ctx, c, p.ID, p.Version, update)
}

// paymentsOf returns a user's payments that touched the card, newest first: authorized (held,
// orders deciding), succeeded (captured), released (held, then let go), refunded.
func (s Store) paymentsOf(ctx context.Context, userID string) ([]Payment, error) {
	return s.findPayments(ctx, bson.M{"userId": userID,
		"status": bson.M{"$in": bson.A{paymentAuthorized, paymentSucceeded, paymentReleased, paymentRefunded}}})
}

// abandoned returns pending claims last claimed before the given time.
func (s Store) abandoned(ctx context.Context, before time.Time) ([]Payment, error) {
	return s.findPayments(ctx, bson.M{"status": paymentPending, "claimedAt": bson.M{"$lt": before}})
}

func (s Store) findPayments(ctx context.Context, filter bson.M) ([]Payment, error) {
	c, err := s.coll(ctx, paymentsCollection)
	if err != nil {
		return nil, err
	}
	cur, err := c.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}))
	if err != nil {
		return nil, err
	}
	out := []Payment{}
	return out, cur.All(ctx, &out)
}

func findOne(ctx context.Context, c lungo.ICollection, filter bson.M, v any) (bool, error) {
	err := c.FindOne(ctx, filter).Decode(v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}
