// expiration.go: the tick. Claim due orders batch by batch, publish expiration.completed for
// each, then drop the published claims and put the failed ones back for the next tick.
package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/publish"
)

// Expiration is the function's state: the queue, the publisher and the tick's limits.
type Expiration struct {
	queue *Queue
	pub   *publish.Publisher
	Now   func() time.Time
	// Batch is how many orders one claim takes; PerTick bounds one tick's work so that a
	// backlog is spread over ticks instead of outliving the ping's request.
	Batch, PerTick int
	// Parallel is how many events of a batch are in flight to the Broker at once.
	Parallel int
}

// New returns the expiration function over a queue and a Broker publisher.
func New(q *Queue, pub *publish.Publisher) *Expiration {
	return &Expiration{queue: q, pub: pub, Now: time.Now, Batch: 100, PerTick: 10000, Parallel: 8}
}

// expirationID is the event id of an order's expiry: the same on every publish of it, so
// that the Broker and orders drop a repeat.
func expirationID(orderID string) string { return "expiration-" + orderID }

// Expire publishes expiration.completed for every due order, up to PerTick, and returns how
// many went out. An error means some did not (Redis or the Broker is down): those stay queued.
func (x *Expiration) Expire(ctx context.Context) (int, error) {
	published := 0
	for published < x.PerTick {
		claims, err := x.queue.Claim(ctx, x.Now(), min(x.Batch, x.PerTick-published))
		if err != nil {
			return published, fmt.Errorf("claim due orders: %w", err)
		}
		if len(claims) == 0 {
			return published, nil
		}
		sent, failed, pubErr := x.publish(ctx, claims)
		published += len(sent)

		// Settle the claims even when the request was cancelled meanwhile; if this fails too,
		// the lease runs out and a later tick takes them again.
		settle, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = errors.Join(x.queue.Finish(settle, sent), x.queue.Release(settle, failed))
		cancel()
		if pubErr != nil {
			err = errors.Join(fmt.Errorf("%d of %d expirations not published, queued again: %w", len(failed), len(claims), pubErr), err)
		}
		if err != nil {
			return published, err
		}
	}
	return published, nil
}

// publish sends one event per claim, Parallel at a time, and splits the claims by outcome.
func (x *Expiration) publish(ctx context.Context, claims []Claim) (sent, failed []Claim, first error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		slot = make(chan struct{}, max(x.Parallel, 1))
	)
	for _, c := range claims {
		slot <- struct{}{}
		wg.Go(func() {
			defer func() { <-slot }()
			err := x.pub.Publish(ctx, events.NewWithID(expirationID(c.OrderID), events.ExpirationCompleted{OrderID: c.OrderID}))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, c)
				if first == nil {
					first = err
				}
				return
			}
			sent = append(sent, c)
		})
	}
	wg.Wait()
	return sent, failed, first
}
