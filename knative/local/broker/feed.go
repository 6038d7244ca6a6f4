package broker

import (
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Stages of an event's way through the Broker, as `make events` shows them.
const (
	StageAccepted     = "accepted"      // the ingress stored it
	StageDelivered    = "delivered"     // a subscriber answered 2xx
	StageRetry        = "retry"         // a retryable failure; delivered again after a backoff
	StageDeadLettered = "dead-lettered" // a terminal answer or the last attempt failed
	StageReplied      = "replied"       // the subscriber's reply event went back into the Broker
	StageDropped      = "dropped"       // a duplicate id, a reply without hops left, or one not valid
	StageReplayed     = "replayed"      // taken from the dead letters and delivered again
)

// EventSummary is what a Record says about the event.
type EventSummary struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Source  string `json:"source"`
	Subject string `json:"subject,omitempty"`
}

func summary(e cloudevents.Event) EventSummary {
	return EventSummary{ID: e.ID(), Type: e.Type(), Source: e.Source(), Subject: e.Subject()}
}

// Record is one step of one event.
type Record struct {
	Time     time.Time     `json:"time"`
	Stage    string        `json:"stage"`
	Event    EventSummary  `json:"event"`
	Trigger  string        `json:"trigger,omitempty"`
	Code     int           `json:"code,omitempty"` // the subscriber's HTTP status
	Attempt  int           `json:"attempt,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Error    string        `json:"error,omitempty"`
	Data     eventData     `json:"data,omitempty"` // the event's JSON data, on "accepted" records (feeddata.go)
}

// Feed fans records out to whoever follows the Broker. A follower that does not keep up
// loses records rather than slowing deliveries down.
type Feed struct {
	mu     sync.Mutex
	subs   map[chan Record]struct{}
	closed bool
}

func newFeed() *Feed { return &Feed{subs: map[chan Record]struct{}{}} }

// Follow returns a channel of records from now on and a function that stops following. The
// channel is closed when the Broker closes or stop is called.
func (f *Feed) Follow() (records <-chan Record, stop func()) {
	ch := make(chan Record, 1024)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	f.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

func (f *Feed) publish(r Record) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- r:
		default:
		}
	}
}

func (f *Feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
}
