package broker

import (
	"encoding/json"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// MaxFeedData is the largest event data an "accepted" record carries (make events SHOW=data).
const MaxFeedData = 4096

// eventData is an event's data as the feed shows it: JSON, as sent.
type eventData = json.RawMessage

// feedData is e's data when it is JSON of at most MaxFeedData bytes, else nothing.
func feedData(e cloudevents.Event) eventData {
	d := e.Data()
	if len(d) == 0 || len(d) > MaxFeedData || !json.Valid(d) {
		return nil
	}
	return eventData(d)
}
