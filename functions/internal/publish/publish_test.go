package publish_test

import (
	"context"
	"net/http"
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
