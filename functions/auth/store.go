// store.go: the users collection of the auth database; a unique index on email decides
// which of two sign-ups for one address wins.
package main

import (
	"context"
	"errors"
	"time"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/tickit/tickit/functions/internal/store"
)

const (
	database        = "auth"
	usersCollection = "users"
)

// userRecord is a stored account.
type userRecord struct {
	ID           primitive.ObjectID `bson:"_id"`
	Email        string             `bson:"email"`
	PasswordHash string             `bson:"passwordHash"` // PHC string, see password.go
	CreatedAt    time.Time          `bson:"createdAt"`
}

func (r userRecord) user() user { return user{ID: r.ID.Hex(), Email: r.Email} }

// setup creates the unique index on email when the database is first opened.
func setup(ctx context.Context, db lungo.IDatabase) error {
	return store.EnsureIndex(ctx, db.Collection(usersCollection), bson.D{{Key: "email", Value: 1}}, true)
}

// users persists accounts.
type users struct{ db *store.DB }

// create stores a new account; an email already taken gives errEmailInUse.
func (u users) create(ctx context.Context, email, passwordHash string) (user, error) {
	coll, err := u.db.Collection(ctx, usersCollection)
	if err != nil {
		return user{}, err
	}
	rec := userRecord{ID: primitive.NewObjectID(), Email: email, PasswordHash: passwordHash, CreatedAt: time.Now().UTC()}
	if _, err := coll.InsertOne(ctx, rec); err != nil {
		if store.IsDuplicateKey(err) {
			return user{}, errEmailInUse
		}
		return user{}, err
	}
	return rec.user(), nil
}

// byEmail finds the account of a normalized email; found is false when there is none.
func (u users) byEmail(ctx context.Context, email string) (rec userRecord, found bool, err error) {
	coll, err := u.db.Collection(ctx, usersCollection)
	if err != nil {
		return rec, false, err
	}
	err = coll.FindOne(ctx, bson.M{"email": email}).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

// replaceHash swaps an account's password hash for one with new parameters, unless the hash
// changed since it was read (then the newer one stays).
func (u users) replaceHash(ctx context.Context, id primitive.ObjectID, oldHash, newHash string) error {
	coll, err := u.db.Collection(ctx, usersCollection)
	if err != nil {
		return err
	}
	_, err = coll.UpdateOne(ctx, bson.M{"_id": id, "passwordHash": oldHash}, bson.M{"$set": bson.M{"passwordHash": newHash}})
	return err
}
