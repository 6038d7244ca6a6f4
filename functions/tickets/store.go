package main

// store.go: the tickets collection: queries, and version-checked changes that carry their
// ticket.updated event through the outbox.

import (
	"context"
	"errors"
	"time"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/store"
)

const collection = "tickets"

// maxTries bounds how often a change is decided again after losing a version race; past it
// the caller gets store.ErrConflict (the API answers 409, an event is retried by the Broker).
const maxTries = 10

// errNoTicket: no ticket has this id (yet: its ticket.created may still be on its way).
var errNoTicket = errors.New("no such ticket")

// document is a ticket as stored; Outbox is only written by the insert (later changes add
// their events with outbox.Add).
type document struct {
	ID              primitive.ObjectID `bson:"_id"`
	Title           string             `bson:"title"`
	Price           events.Price       `bson:"price"` // cents
	UserID          string             `bson:"userId"`
	Version         int64              `bson:"version"`
	OrderID         string             `bson:"orderId"`
	OrderExpiresAt  time.Time          `bson:"orderExpiresAt"`
	CancelledOrders []string           `bson:"cancelledOrders"`
	Sold            bool               `bson:"sold"`
	Outbox          bson.M             `bson:"outbox,omitempty"`
}

func (d document) ticket() Ticket {
	return Ticket{ID: d.ID.Hex(), Title: d.Title, Price: d.Price, UserID: d.UserID, Version: d.Version,
		OrderID: d.OrderID, OrderExpiresAt: d.OrderExpiresAt, CancelledOrders: d.CancelledOrders, Sold: d.Sold}
}

// setup indexes the listing's query (MongoDB uses it; lungo scans anyway).
func setup(ctx context.Context, db lungo.IDatabase) error {
	return store.EnsureIndex(ctx, db.Collection(collection), bson.D{{Key: "orderId", Value: 1}, {Key: "sold", Value: 1}, {Key: "_id", Value: -1}}, false)
}

// tickets is the collection and the outbox its changes publish through.
type tickets struct {
	db  *store.DB
	box *outbox.Outbox
}

func (s tickets) coll(ctx context.Context) (lungo.ICollection, error) {
	return s.db.Collection(ctx, collection)
}

// create stores a new ticket (version 0) with its ticket.created event and publishes it.
func (s tickets) create(ctx context.Context, title string, price events.Price, userID string) (Ticket, error) {
	coll, err := s.coll(ctx)
	if err != nil {
		return Ticket{}, err
	}
	d := document{ID: primitive.NewObjectID(), Title: title, Price: price, UserID: userID, CancelledOrders: []string{}}
	t := d.ticket()
	e := events.New(t.Created())
	d.Outbox = outbox.Entries(ctx, e)
	if _, err := coll.InsertOne(ctx, d); err != nil {
		return Ticket{}, err
	}
	s.box.Deliver(ctx, collection, d.ID, e)
	return t, nil
}

// find returns the ticket with the given id, or errNoTicket.
func (s tickets) find(ctx context.Context, id primitive.ObjectID) (Ticket, error) {
	coll, err := s.coll(ctx)
	if err != nil {
		return Ticket{}, err
	}
	var d document
	err = coll.FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Ticket{}, errNoTicket
	}
	return d.ticket(), err
}

// listed returns up to limit tickets for sale, newest first, older than the ticket after
// (the last one of the previous page) when it is set. ObjectIDs grow with time, so _id order
// is creation order.
func (s tickets) listed(ctx context.Context, after *primitive.ObjectID, limit int) ([]Ticket, error) {
	coll, err := s.coll(ctx)
	if err != nil {
		return nil, err
	}
	filter := bson.M{"orderId": noOrder, "sold": false}
	if after != nil {
		filter["_id"] = bson.M{"$lt": *after}
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)).
		SetProjection(bson.M{outbox.Field: 0, "cancelledOrders": 0})
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	var docs []document
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	list := make([]Ticket, len(docs))
	for i, d := range docs {
		list[i] = d.ticket()
	}
	return list, nil
}

// decide reads the ticket and runs change on it; when change loses a version race
// (store.ErrConflict) it reads again and decides again, up to maxTries times.
func (s tickets) decide(ctx context.Context, id primitive.ObjectID, change func(Ticket) error) error {
	var err error
	for range maxTries {
		var t Ticket
		if t, err = s.find(ctx, id); err != nil {
			return err
		}
		if err = change(t); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return err
}

// edit sets a new title and price.
func (s tickets) edit(ctx context.Context, t Ticket, title string, price events.Price) (Ticket, error) {
	next := t
	next.Title, next.Price = title, price
	return s.write(ctx, t, next, nil, bson.M{"$set": bson.M{"title": title, "price": price}})
}

// reserve hands the ticket to orderID, unless that order was recorded cancelled meanwhile
// (a cancel is recorded without a version change, so the version alone would miss it).
func (s tickets) reserve(ctx context.Context, t Ticket, orderID string, expiresAt time.Time) (Ticket, error) {
	next := t
	next.OrderID, next.OrderExpiresAt = orderID, expiresAt
	guard := bson.M{"cancelledOrders": bson.M{"$nin": bson.A{orderID}}}
	return s.write(ctx, t, next, guard, bson.M{"$set": bson.M{"orderId": orderID, "orderExpiresAt": expiresAt}})
}

// release frees the ticket held by the cancelled order orderID, recording the cancel.
func (s tickets) release(ctx context.Context, t Ticket, orderID string) (Ticket, error) {
	next := t
	next.OrderID, next.OrderExpiresAt = noOrder, time.Time{}
	return s.write(ctx, t, next, nil, bson.M{
		"$set":  bson.M{"orderId": noOrder, "orderExpiresAt": time.Time{}},
		"$push": bson.M{"cancelledOrders": orderID},
	})
}

// sell marks the ticket sold to the paid order orderID.
func (s tickets) sell(ctx context.Context, t Ticket, orderID string) (Ticket, error) {
	next := t
	next.OrderID, next.Sold = orderID, true
	return s.write(ctx, t, next, nil, bson.M{"$set": bson.M{"orderId": orderID, "sold": true}})
}

// record remembers that orderID was cancelled, without a new version: nothing anyone sees
// changes, and orders' replica expects one ticket.updated per version. The write still
// requires the version read, so it cannot slip past a reservation it did not see.
func (s tickets) record(ctx context.Context, t Ticket, orderID string) error {
	return s.recordCancelled(ctx, t, orderID, bson.M{"$push": bson.M{"cancelledOrders": orderID}})
}

// refuse refuses orderID's reservation (the seller changed the ticket since the order was
// placed): the order is recorded as cancelled, as record does, so that no repeat of its
// order.created reserves, and reservation.refused, in the same write, tells orders to cancel
// it. The event's id derives from the order: a repeat carries the same id.
func (s tickets) refuse(ctx context.Context, t Ticket, orderID string) error {
	e := events.NewWithID("reservation-refused-"+orderID, events.ReservationRefused{OrderID: orderID, TicketID: t.ID})
	update := outbox.Add(ctx, bson.M{"$push": bson.M{"cancelledOrders": orderID}}, e)
	if err := s.recordCancelled(ctx, t, orderID, update); err != nil {
		return err
	}
	id, _ := store.ParseID(t.ID)
	s.box.Deliver(ctx, collection, id, e)
	return nil
}

// recordCancelled applies update (which records orderID as cancelled) to the ticket at the
// version read, without a new version; store.ErrConflict when the ticket moved meanwhile.
func (s tickets) recordCancelled(ctx context.Context, t Ticket, orderID string, update bson.M) error {
	coll, err := s.coll(ctx)
	if err != nil {
		return err
	}
	id, _ := store.ParseID(t.ID)
	res, err := coll.UpdateOne(ctx,
		bson.M{"_id": id, "version": t.Version, "cancelledOrders": bson.M{"$nin": bson.A{orderID}}}, update)
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		return store.ErrConflict
	}
	return nil
}

// write moves the ticket from t to next (version+1, returned) with a version-checked update
// that also matches guard, records next's ticket.updated in the same update, then publishes it.
func (s tickets) write(ctx context.Context, t, next Ticket, guard, update bson.M) (Ticket, error) {
	coll, err := s.coll(ctx)
	if err != nil {
		return Ticket{}, err
	}
	id, _ := store.ParseID(t.ID)
	next.Version = t.Version + 1
	e := events.New(next.Updated())
	filter := bson.M{"_id": id}
	for k, v := range guard {
		filter[k] = v
	}
	if err := store.UpdateVersionWhere(ctx, coll, filter, t.Version, outbox.Add(ctx, update, e)); err != nil {
		return Ticket{}, err
	}
	s.box.Deliver(ctx, collection, id, e)
	return next, nil
}
