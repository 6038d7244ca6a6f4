// Package delivery is one list of delivery scenarios run through a Knative Broker: for each
// answer a subscriber can give (2xx, a reply event, retryable and final statuses, a timeout, a
// refused connection, a repeated event id, retries exhausted) it records how many attempts the
// subscriber saw, the delays between them, the final outcome and the knative* extensions the
// dead-letter sink saw. knative/local's Broker (make test) and the real MT Broker over
// eventing-natss's NatsJetStreamChannel (make conformance) run the same list; Table prints the
// columns side by side and counts where they disagree (issue 15 item 3).
//
// It depends on the standard library and the CloudEvents SDK only, so that both the
// knative/local and the knative/conformance modules can import it.
package delivery

import (
	"context"
	"time"
)

// Spec is a Trigger's delivery spec, as Knative's DeliverySpec writes it: Retry is the number of
// retries after the first attempt, BackoffPolicy "linear" or "exponential", BackoffDelay and
// Timeout ISO-8601 durations such as "PT0.5S" (Timeout empty: none set).
type Spec struct {
	Retry                                int32
	BackoffPolicy, BackoffDelay, Timeout string
}

// TableSpec is the delivery spec of every scenario: tickit's shape (exponential backoff, a
// per-attempt timeout) with small delays so that the whole table runs in about 15 s.
var TableSpec = Spec{Retry: 3, BackoffPolicy: "exponential", BackoffDelay: "PT0.2S", Timeout: "PT1S"}

// Broker is the Broker under test.
type Broker interface {
	// Route makes a Trigger called name (a Kubernetes name) that sends the events whose type is
	// exactly eventType to the subscriber URL, with spec and the dead-letter sink URL. It returns
	// once the Trigger delivers.
	Route(ctx context.Context, name, eventType, subscriber, deadLetterSink string, spec Spec) error
	// Ingress is the URL that takes CloudEvents (HTTP POST, binary mode).
	Ingress() string
}

// Outcomes of a scenario.
const (
	Acked        = "acked"         // the subscriber's last answer was 2xx and nothing followed
	Dropped      = "dropped"       // no attempt is left and the dead-letter sink got nothing
	DeadLettered = "dead-lettered" // the dead-letter sink got the event
)

// Result is what one scenario did.
type Result struct {
	Scenario string
	// Attempts is how many times the subscriber got the event (0 when it cannot be seen: a
	// refused connection).
	Attempts int
	// Delays are the times between one attempt's arrival and the next one's.
	Delays  []time.Duration
	Outcome string // Acked, Dropped or DeadLettered
	// DeadLetterExtensions are the extensions whose names start with "knative" on the event
	// the dead-letter sink got, as text: knativeerrorcode, knativeerrordest (the scenario's
	// servers written {subscriber} and {refused}), knativeerrordata decoded from base64,
	// knativearrivaltime (the ingress's arrival time) written {time}.
	DeadLetterExtensions map[string]string
	DeadLetters          int // events the dead-letter sink got
	Replies              int // reply events that came back through the Broker to their Trigger
	// Elapsed is the time from posting the event to the last thing seen (an attempt, a dead
	// letter or a reply).
	Elapsed time.Duration
}
