package outbox

import (
	"context"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
)

// Entries returns events as the value of the Field of a document that is inserted (not
// updated) together with them, so that the insert itself records them as pending (with ctx's
// trace context, as Add).
func Entries(ctx context.Context, evs ...cloudevents.Event) bson.M {
	m := bson.M{}
	for _, e := range evs {
		m[e.ID()] = encode(ctx, e)
	}
	return m
}
