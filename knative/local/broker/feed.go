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
	StageDropped      = "dropped"       // a final answer before the last attempt, a duplicate id, a reply without hops left or not valid
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
	Seq      uint64        `json:"seq"` // position in the feed, from 1
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

// History is how many of the latest records the feed keeps for followers that start late.
const History = 4096

// Feed fans records out to whoever follows the Broker, and keeps the latest History of them so
// that a follower can start from a cursor and miss nothing that happened since. A follower that
// does not keep up loses records rather than slowing deliveries down.
type Feed struct {
	mu      sync.Mutex
	seq     uint64   // of the latest record
	history []Record // a ring of the latest records: record n is at (n-1) % History
	subs    map[chan Record]struct{}
	closed  bool
}

func newFeed() *Feed { return &Feed{subs: map[chan Record]struct{}{}} }

// Cursor is the sequence number of the latest record (0 before the first): pass it to
// FollowFrom to see everything that happens after this call.
func (f *Feed) Cursor() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq
}

// Follow is FollowFrom(Cursor()): the records from now on. A caller that acts and then waits
// for the records of its action takes the cursor before acting instead.
func (f *Feed) Follow() (records <-chan Record, stop func()) {
	return f.FollowFrom(f.Cursor())
}

// FollowFrom returns a channel of the records after cursor (those still kept, then every new
// one) and a function that stops following. The channel is closed when the Broker closes or
// stop is called.
func (f *Feed) FollowFrom(cursor uint64) (records <-chan Record, stop func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldest := uint64(1)
	if f.seq > History {
		oldest = f.seq - History + 1
	}
	first := max(cursor+1, oldest)
	var backlog []Record
	for n := first; n <= f.seq; n++ {
		backlog = append(backlog, f.history[(n-1)%History])
	}
	ch := make(chan Record, len(backlog)+1024)
	for _, r := range backlog {
		ch <- r
	}
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
	f.seq++
	r.Seq = f.seq
	if len(f.history) < History {
		f.history = append(f.history, r)
	} else {
		f.history[(r.Seq-1)%History] = r
	}
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
