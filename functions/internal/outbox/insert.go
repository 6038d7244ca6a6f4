package outbox

import (
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
)

// Entries returns events as the value of the Field of a document that is inserted (not
// updated) together with them, so that the insert itself records them as pending.
func Entries(evs ...cloudevents.Event) bson.M {
	m := bson.M{}
	for _, e := range evs {
		m[e.ID()] = encode(e)
	}
	return m
}
