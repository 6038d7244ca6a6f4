package testenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tickit/tickit/functions/internal/publish"
)

// Sink stands in for the Broker's ingress: it records every CloudEvent posted to it and can
// be told to refuse them for a while.
type Sink struct {
	URL string

	mu         sync.Mutex
	events     []cloudevents.Event
	failStatus int
	failures   int // how many more posts to refuse; < 0 refuses until Recover
}

// NewSink starts a sink for the test.
func NewSink(t testing.TB) *Sink {
	s := &Sink{}
	srv := httptest.NewServer(http.HandlerFunc(s.receive))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *Sink) receive(w http.ResponseWriter, r *http.Request) {
	e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures != 0 {
		if s.failures > 0 {
			s.failures--
		}
		w.WriteHeader(s.failStatus)
		return
	}
	s.events = append(s.events, *e)
	w.WriteHeader(http.StatusAccepted)
}

// Fail makes the next n posts (n < 0: every post until Recover) answer with status.
func (s *Sink) Fail(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus, s.failures = status, n
}

// Recover makes the sink accept events again.
func (s *Sink) Recover() { s.Fail(0, 0) }

// Events returns the events accepted so far, of the given type or of every type when typ is "".
func (s *Sink) Events(typ string) []cloudevents.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cloudevents.Event
	for _, e := range s.events {
		if typ == "" || e.Type() == typ {
			out = append(out, e)
		}
	}
	return out
}

// WaitFor waits up to 10 s until at least n events of type typ arrived and returns them.
func (s *Sink) WaitFor(t testing.TB, typ string, n int) []cloudevents.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.Events(typ)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d %s events, got %d", n, typ, len(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Publisher returns a publisher to the sink that retries quickly.
func (s *Sink) Publisher(t testing.TB) *publish.Publisher {
	p, err := publish.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	p.Backoff = time.Millisecond
	return p
}

// Send posts e to a function at url (binary mode, or structured) and returns the status and
// the reply event, if the function sent one.
func Send(t testing.TB, url string, e cloudevents.Event, structured bool) (int, *cloudevents.Event) {
	t.Helper()
	ctx := binding.WithForceBinary(context.Background())
	if structured {
		ctx = binding.WithForceStructured(context.Background())
	}
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	resp, err := Client.Do(req)
	if err != nil {
		t.Fatalf("send %s: %v", e.Type(), err)
	}
	defer resp.Body.Close()
	msg := cehttp.NewMessageFromHttpResponse(resp)
	if msg.ReadEncoding() == binding.EncodingUnknown {
		return resp.StatusCode, nil
	}
	reply, err := binding.ToEvent(ctx, msg)
	if err != nil {
		t.Fatalf("reply to %s is not a CloudEvent: %v", e.Type(), err)
	}
	return resp.StatusCode, reply
}
