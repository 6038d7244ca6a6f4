// Package publish sends CloudEvents to the Broker at $K_SINK.
package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tickit/tickit/functions/internal/tracing"
)

// Publisher posts events to one sink, retrying what may succeed on a second try.
type Publisher struct {
	client   cloudevents.Client
	Attempts int           // tries per event
	Backoff  time.Duration // wait before the second try; doubles after each
}

// idleConns is how many idle connections to the sink a publisher keeps: as many as a
// function's requests publish at once. The sink is one host (the Broker's ingress), and
// http.DefaultTransport keeps 2 per host, so under load most publishes dialled a new
// connection (TestConcurrentPublishesReuseTheirConnections: 97 for 200 events from 20 publishers).
const idleConns = 256

// New returns a publisher for the sink URL, with a timeout on every attempt.
func New(sink string) (*Publisher, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = idleConns, idleConns
	p, err := cloudevents.NewHTTP(cloudevents.WithTarget(sink), cehttp.WithClient(http.Client{Timeout: 5 * time.Second, Transport: tracing.Transport(t)}))
	if err != nil {
		return nil, fmt.Errorf("publish: sink %q: %w", sink, err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, err
	}
	return &Publisher{client: c, Attempts: 3, Backoff: 100 * time.Millisecond}, nil
}

// Publish sends e until the sink accepts it, the attempts run out, or the sink refuses it for
// good (a 4xx other than 408 and 429). The error says why the event did not go out.
// The event carries the trace context it was created in (tracing.StartPublish).
func (p *Publisher) Publish(ctx context.Context, e cloudevents.Event) (err error) {
	ctx, span := tracing.StartPublish(ctx, &e)
	defer func() { tracing.End(span, err) }()
	wait := p.Backoff
	for attempt := 1; ; attempt++ {
		result := p.client.Send(ctx, e)
		if cloudevents.IsACK(result) {
			return nil
		}
		err = fmt.Errorf("publish %s %s (attempt %d): %w", e.Type(), e.ID(), attempt, result)
		if attempt >= p.Attempts || terminal(result) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
			wait *= 2
		}
	}
}

// terminal reports an answer that a retry cannot change.
func terminal(result error) bool {
	var r *cehttp.Result
	if !cloudevents.ResultAs(result, &r) {
		return false
	}
	return r.StatusCode >= 400 && r.StatusCode < 500 && r.StatusCode != http.StatusRequestTimeout && r.StatusCode != http.StatusTooManyRequests
}
