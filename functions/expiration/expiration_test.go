package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// env is one expiration function on a fresh redis-server, publishing to a Broker stand-in.
type env struct {
	x     *Expiration
	queue *Queue
	sink  *testenv.Sink
	url   string
}

func setup(t testing.TB) env {
	t.Helper()
	return setupOn(t, testenv.Redis(t))
}

func setupOn(t testing.TB, redisURL string) env {
	t.Helper()
	q, err := Connect(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	sink := testenv.NewSink(t)
	x := New(q, sink.Publisher(t))
	srv := testenv.Serve(t, x.Function())
	return env{x: x, queue: q, sink: sink, url: srv.URL}
}

func newID() string { return primitive.NewObjectID().Hex() }

func created(id string, expiresAt time.Time) cloudevents.Event {
	return events.New(events.OrderCreated{
		ID: id, Status: events.StatusCreated, UserID: newID(), UserEmail: "buyer@example.com",
		ExpiresAt: expiresAt, Ticket: events.OrderTicket{ID: newID(), Title: "Concert", Price: 1999},
	})
}

func cancelled(id string) cloudevents.Event {
	return events.New(events.OrderCancelled{ID: id, Version: 1, Ticket: events.OrderTicket{ID: newID()}})
}

func completed(id string) cloudevents.Event {
	return events.New(events.OrderCompleted{
		ID: id, Version: 1, UserID: newID(), UserEmail: "buyer@example.com",
		Ticket: events.OrderTicket{ID: newID(), Title: "Concert", Price: 1999}, PaymentID: newID(),
	})
}

func ping() cloudevents.Event { return events.New(events.Ping{}) }

// send posts e to the function over HTTP and checks the status.
func (v env) send(t *testing.T, e cloudevents.Event, want int) {
	t.Helper()
	if got, _ := testenv.Send(t, v.url, e, false); got != want {
		t.Fatalf("%s answered %d, want %d", e.Type(), got, want)
	}
}

// expired returns how many expiration.completed events each order got, checking their ids.
func (v env) expired(t *testing.T) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, e := range v.sink.Events(events.TypeExpirationCompleted) {
		p, err := events.Decode[events.ExpirationCompleted](e)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID() != "expiration-"+p.OrderID {
			t.Fatalf("event id %q, want expiration-%s", e.ID(), p.OrderID)
		}
		got[p.OrderID]++
	}
	return got
}

func (v env) card(t *testing.T, key string) int64 {
	t.Helper()
	n, err := v.queue.rdb.ZCard(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDueOrdersAreExpiredExactlyOnceAcrossTenConcurrentTicks(t *testing.T) {
	// Arrange: 10,000 due orders and 100 that are not due yet, scheduled by the handler itself.
	v := setup(t)
	v.x.Batch = 50 // small batches: the ticks interleave many times
	ctx := testenv.Context(t)
	handle := v.x.Function().Events
	now := time.Now()
	due := make([]string, 10000)
	for i := range due {
		due[i] = newID()
	}
	later := make([]string, 100)
	for i := range later {
		later[i] = newID()
	}
	errs := make(chan error, len(due)+len(later)+10)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(due); i += 8 {
				_, err := handle[events.TypeOrderCreated](ctx, created(due[i], now.Add(-time.Duration(i)*time.Millisecond)))
				errs <- err
			}
			for i := w; i < len(later); i += 8 {
				_, err := handle[events.TypeOrderCreated](ctx, created(later[i], now.Add(time.Hour)))
				errs <- err
			}
		})
	}
	testenv.Wait(t, &wg, 5*time.Minute, "the orders queued by 8 workers")

	// Act: ten ticks at once, as ten instances would run them.
	for range 10 {
		wg.Go(func() {
			_, err := handle[events.TypePing](ctx, ping())
			errs <- err
		})
	}
	testenv.Wait(t, &wg, 5*time.Minute, "the ten concurrent ticks")
	close(errs)

	// Assert
	for err := range errs {
		if err != nil {
			t.Fatalf("a handler failed: %v", err)
		}
	}
	got := v.expired(t)
	if len(got) != len(due) {
		t.Fatalf("%d orders expired, want %d", len(got), len(due))
	}
	for _, id := range due {
		if got[id] != 1 {
			t.Fatalf("order %s expired %d times, want once", id, got[id])
		}
	}
	if n := v.card(t, dueKey); n != int64(len(later)) {
		t.Fatalf("%d orders left in the queue, want the %d not due yet", n, len(later))
	}
	if n := v.card(t, claimedKey); n != 0 {
		t.Fatalf("%d claims left behind, want none", n)
	}
}

func TestCancelledAndCompletedOrdersNeverExpire(t *testing.T) {
	// Arrange
	v := setup(t)
	past := time.Now().Add(-time.Minute)
	cancelledID, completedID, dueID := newID(), newID(), newID()
	for _, id := range []string{cancelledID, completedID, dueID} {
		v.send(t, created(id, past), http.StatusAccepted)
	}
	v.send(t, cancelled(cancelledID), http.StatusAccepted)
	v.send(t, completed(completedID), http.StatusAccepted)

	// Act: a tick, then order.created delivered again late for every order, then another tick.
	v.send(t, ping(), http.StatusAccepted)
	for _, id := range []string{cancelledID, completedID, dueID} {
		v.send(t, created(id, past), http.StatusAccepted)
	}
	v.send(t, ping(), http.StatusAccepted)

	// Assert
	got := v.expired(t)
	if len(got) != 1 || got[dueID] != 1 {
		t.Fatalf("expired %v, want only %s once", got, dueID)
	}
	if n := v.card(t, dueKey); n != 0 {
		t.Fatalf("%d orders still queued, want none: ended orders must not be scheduled again", n)
	}
}

func TestARedeliveredOrderCreatedKeepsTheFirstExpiry(t *testing.T) {
	// Arrange
	v := setup(t)
	id := newID()
	first := time.Now().Add(time.Hour).Truncate(time.Millisecond)

	// Act
	v.send(t, created(id, first), http.StatusAccepted)
	v.send(t, created(id, first.Add(time.Hour)), http.StatusAccepted)
	v.send(t, ping(), http.StatusAccepted)

	// Assert: queued once at the first expiry, not expired before it.
	score, err := v.queue.rdb.ZScore(context.Background(), dueKey, id).Result()
	if err != nil {
		t.Fatal(err)
	}
	if int64(score) != first.UnixMilli() || v.card(t, dueKey) != 1 {
		t.Fatalf("score %v (queue of %d), want %d once", int64(score), v.card(t, dueKey), first.UnixMilli())
	}
	if got := v.expired(t); len(got) != 0 {
		t.Fatalf("expired %v before its time", got)
	}
	v.x.Now = func() time.Time { return first }
	v.send(t, ping(), http.StatusAccepted)
	if got := v.expired(t); got[id] != 1 || len(got) != 1 {
		t.Fatalf("expired %v at its time, want %s once", got, id)
	}
}

func TestAFailedPublishIsRetriedOnTheNextTick(t *testing.T) {
	// Arrange
	v := setup(t)
	ids := []string{newID(), newID(), newID()}
	scores := map[string]float64{}
	for i, id := range ids {
		at := time.Now().Add(-time.Duration(i+1) * time.Minute).Truncate(time.Millisecond)
		scores[id] = float64(at.UnixMilli())
		v.send(t, created(id, at), http.StatusAccepted)
	}
	v.sink.Fail(http.StatusServiceUnavailable, -1)

	// Act: the Broker refuses everything during the first tick.
	v.send(t, ping(), http.StatusServiceUnavailable)

	// Assert: nothing went out and every order is queued again with its own expiry.
	if got := v.expired(t); len(got) != 0 {
		t.Fatalf("expired %v while the Broker refused them", got)
	}
	for _, id := range ids {
		score, err := v.queue.rdb.ZScore(context.Background(), dueKey, id).Result()
		if err != nil || score != scores[id] {
			t.Fatalf("order %s back with score %v (%v), want %v", id, score, err, scores[id])
		}
	}
	if n := v.card(t, claimedKey); n != 0 {
		t.Fatalf("%d claims left behind after a failed publish", n)
	}

	// Act: the Broker is back for the next tick.
	v.sink.Recover()
	v.send(t, ping(), http.StatusAccepted)

	// Assert
	got := v.expired(t)
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("expired %v, want each of %v once", got, ids)
		}
	}
}

func TestAClaimOfATickThatDiedIsTakenAgainWhenItsLeaseEnds(t *testing.T) {
	// Arrange: a tick claimed the order and died before publishing.
	v := setup(t)
	ctx := testenv.Context(t)
	id := newID()
	now := time.Now()
	v.send(t, created(id, now.Add(-time.Second)), http.StatusAccepted)
	if claims, err := v.queue.Claim(ctx, now, 10); err != nil || len(claims) != 1 {
		t.Fatalf("claim: %v %v", claims, err)
	}

	// Act + Assert: while the lease lasts nobody else takes it; after it, the next tick does.
	v.x.Now = func() time.Time { return now }
	v.send(t, ping(), http.StatusAccepted)
	if got := v.expired(t); len(got) != 0 {
		t.Fatalf("expired %v during another tick's lease", got)
	}
	v.x.Now = func() time.Time { return now.Add(v.queue.Lease + time.Second) }
	v.send(t, ping(), http.StatusAccepted)
	if got := v.expired(t); got[id] != 1 {
		t.Fatalf("expired %v after the lease, want %s once", got, id)
	}
	if n := v.card(t, claimedKey); n != 0 {
		t.Fatalf("%d claims left behind", n)
	}
}

func TestAnOrderCancelledWhileItsExpiryIsPublishingIsNotQueuedAgain(t *testing.T) {
	// Arrange
	v := setup(t)
	ctx := testenv.Context(t)
	id := newID()
	v.send(t, created(id, time.Now().Add(-time.Second)), http.StatusAccepted)
	claims, err := v.queue.Claim(ctx, time.Now(), 10)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claim: %v %v", claims, err)
	}

	// Act: the order is cancelled, then the publish fails and the claim is released.
	v.send(t, cancelled(id), http.StatusAccepted)
	if err := v.queue.Release(ctx, claims); err != nil {
		t.Fatal(err)
	}

	// Assert
	if n, c := v.card(t, dueKey), v.card(t, claimedKey); n != 0 || c != 0 {
		t.Fatalf("queue %d, claimed %d; want the cancelled order gone", n, c)
	}
}

func TestATickIsBoundedAndTheNextTickContinues(t *testing.T) {
	// Arrange
	v := setup(t)
	v.x.Batch, v.x.PerTick = 2, 5
	for range 12 {
		v.send(t, created(newID(), time.Now().Add(-time.Second)), http.StatusAccepted)
	}
	ctx := testenv.Context(t)

	// Act + Assert
	for _, want := range []int{5, 5, 2, 0} {
		n, err := v.x.Expire(ctx)
		if err != nil || n != want {
			t.Fatalf("a tick expired %d (%v), want %d", n, err, want)
		}
	}
	if got := v.expired(t); len(got) != 12 {
		t.Fatalf("%d orders expired in all, want 12", len(got))
	}
}

func TestRedisDownAnswers503SoTheBrokerRetries(t *testing.T) {
	// Arrange: nothing listens at REDIS_URL.
	v := setupOn(t, fmt.Sprintf("redis://127.0.0.1:%d/0", testenv.FreePort(t)))
	id := newID()

	// Act + Assert
	v.send(t, created(id, time.Now()), http.StatusServiceUnavailable)
	v.send(t, cancelled(id), http.StatusServiceUnavailable)
	v.send(t, completed(id), http.StatusServiceUnavailable)
	v.send(t, ping(), http.StatusServiceUnavailable)
	if got := v.sink.Events(""); len(got) != 0 {
		t.Fatalf("published %d events without Redis", len(got))
	}
}

func TestMalformedEventsAreNeverTaken(t *testing.T) {
	// Arrange
	v := setup(t)
	bad := created("not-an-id", time.Now())
	noExpiry := created(newID(), time.Time{})

	// Act + Assert
	v.send(t, bad, http.StatusInternalServerError) // never taken: retried, then dead-lettered
	v.send(t, noExpiry, http.StatusInternalServerError)
	if n := v.card(t, dueKey); n != 0 {
		t.Fatalf("a malformed event queued %d orders", n)
	}
}

func TestABadRedisURLIsAConfigError(t *testing.T) {
	if _, err := Connect("http://localhost"); err == nil {
		t.Fatal("Connect accepted a URL that is not redis://")
	}
}

// BenchmarkExpireTick measures one tick expiring a backlog of 1,000 due orders, publishing
// each to a Broker stand-in over HTTP.
func BenchmarkExpireTick(b *testing.B) {
	const backlog = 1000
	v := setup(b)
	ctx := testenv.Context(b)
	now := time.Now()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		members := make([]redis.Z, backlog)
		for i := range members {
			members[i] = redis.Z{Score: float64(now.Add(-time.Minute).UnixMilli()), Member: newID()}
		}
		if err := v.queue.rdb.ZAdd(ctx, dueKey, members...).Err(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if n, err := v.x.Expire(ctx); err != nil || n != backlog {
			b.Fatalf("expired %d (%v), want %d", n, err, backlog)
		}
	}
	b.ReportMetric(float64(backlog*b.N)/b.Elapsed().Seconds(), "orders/s")
}

// refusals records every command a client sends that the server answers with an error.
type refusals struct {
	mu   sync.Mutex
	cmds []string
}

func (r *refusals) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *refusals) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		r.record(cmd)
		return err
	}
}
func (r *refusals) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			r.record(cmd)
		}
		return err
	}
}
func (r *refusals) record(cmd redis.Cmder) {
	if err := cmd.Err(); err != nil && err != redis.Nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.cmds = append(r.cmds, fmt.Sprint(cmd.Args()...)+": "+err.Error())
	}
}

// Connecting asks nothing the server refuses: go-redis's CLIENT SETINFO needs Redis 7.2, and
// the redis-server make run starts (Debian's 7.0) answered it with an error on every new
// connection, a failed span in each trace (README: Follow a purchase).
func TestConnectingAsksNothingTheServerRefuses(t *testing.T) {
	q, err := Connect(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	var r refusals
	q.rdb.AddHook(&r)

	if err := q.rdb.Ping(testenv.Context(t)).Err(); err != nil {
		t.Fatal(err)
	}

	if len(r.cmds) != 0 {
		t.Fatalf("the server refused: %v", r.cmds)
	}
}
