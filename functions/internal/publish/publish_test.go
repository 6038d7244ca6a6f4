package publish_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/publish"
	"github.com/tickit/tickit/functions/internal/testenv"
)

var ping = events.New(events.ExpirationCompleted{OrderID: "65a1b2c3d4e5f60718293a4c"})

func TestPublishRetriesUntilTheSinkAccepts(t *testing.T) {
	sink := testenv.NewSink(t)
	sink.Fail(http.StatusServiceUnavailable, 2)

	if err := sink.Publisher(t).Publish(context.Background(), ping); err != nil {
		t.Fatalf("third attempt should succeed: %v", err)
	}
	if got := sink.Events(""); len(got) != 1 || got[0].ID() != ping.ID() {
		t.Fatalf("sink got %d events", len(got))
	}
}

func TestPublishReportsTheErrorWhenAttemptsRunOut(t *testing.T) {
	sink := testenv.NewSink(t)
	sink.Fail(http.StatusInternalServerError, 3)

	if err := sink.Publisher(t).Publish(context.Background(), ping); err == nil {
		t.Fatal("want an error after 3 failed attempts")
	}
	// The sink refused exactly three posts: the next one is accepted.
	if err := sink.Publisher(t).Publish(context.Background(), ping); err != nil || len(sink.Events("")) != 1 {
		t.Fatalf("the publisher gave up after other than 3 attempts: %v, %d events", err, len(sink.Events("")))
	}
}

func TestPublishDoesNotRetryATerminalRefusal(t *testing.T) {
	sink := testenv.NewSink(t)
	sink.Fail(http.StatusBadRequest, 1)

	if err := sink.Publisher(t).Publish(context.Background(), ping); err == nil {
		t.Fatal("want an error for a 400")
	}
	if len(sink.Events("")) != 0 {
		t.Fatal("a 400 was retried")
	}
}

func TestPublishToNowhereFails(t *testing.T) {
	p, err := publish.New("http://127.0.0.1:" + "1")
	if err != nil {
		t.Fatal(err)
	}
	p.Backoff = time.Millisecond
	if err := p.Publish(context.Background(), ping); err == nil {
		t.Fatal("a refused connection is not a success")
	}
}

func TestConcurrentPublishesReuseTheirConnections(t *testing.T) {
	var dialled atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p, err := publish.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	// 20 publishers at once, 10 events each: one connection each is enough. A connection goes
	// back to the pool a moment after its answer is read, so a publisher may dial once more
	// meanwhile; with 2 idle connections per host (the default transport) it was ~100.
	errs := make(chan error, 200)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				errs <- p.Publish(context.Background(), events.New(events.ExpirationCompleted{OrderID: "65a1b2c3d4e5f60718293a4c"}))
			}
		}()
	}
	testenv.Wait(t, &wg, time.Minute, "the publishers")
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := dialled.Load(); n > 40 {
		t.Fatalf("200 events from 20 publishers opened %d connections, want at most 40 (about one per publisher)", n)
	}
}
