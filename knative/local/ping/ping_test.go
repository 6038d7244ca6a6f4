package ping_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"

	"github.com/tickit/tickit/knative/local/ping"
)

func TestSchedulesOfFiveOrSixFieldsAndDescriptorsParse(t *testing.T) {
	from := time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC)
	cases := []struct {
		schedule, tz string
		next         time.Time
	}{
		{"* * * * *", "", time.Date(2026, 1, 1, 10, 1, 0, 0, time.UTC)},
		{"*/15 * * * * *", "", time.Date(2026, 1, 1, 10, 0, 45, 0, time.UTC)},
		{"@every 2m", "", from.Add(2 * time.Minute)},
		{"0 12 * * *", "Europe/Berlin", time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		s, err := ping.Parse(c.schedule, c.tz)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", c.schedule, c.tz, err)
			continue
		}
		if got := s.Next(from); !got.Equal(c.next) {
			t.Errorf("Parse(%q, %q).Next = %v, want %v", c.schedule, c.tz, got, c.next)
		}
	}
	for _, bad := range []string{"", "* * *", "61 * * * *", "every minute"} {
		if _, err := ping.Parse(bad, ""); err == nil {
			t.Errorf("Parse(%q) accepted a bad schedule", bad)
		}
	}
}

func TestATickSendsPingEventsWithTheSourcesData(t *testing.T) {
	var mu sync.Mutex
	var got []cloudevents.Event
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, *e)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()
	ps := &sourcesv1.PingSource{
		ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "tickit"},
		Spec:       sourcesv1.PingSourceSpec{Schedule: "0 0 1 1 *", ContentType: "application/json", Data: "{}"},
	}
	u, _ := url.Parse(sink.URL)
	src, err := ping.New(ps, u, 10*time.Millisecond, http.DefaultClient, zap.NewNop().Sugar())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pings arrived, want 3 (the tick replaces a once-a-year schedule)", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the PingSource did not stop within a minute of its context's end")
	}

	mu.Lock()
	defer mu.Unlock()
	e := got[0]
	if e.Type() != ping.EventType || e.Source() != "/apis/v1/namespaces/tickit/pingsources/tick" || string(e.Data()) != "{}" || e.DataContentType() != "application/json" {
		t.Fatalf("ping event %s", e)
	}
	if got[0].ID() == got[1].ID() {
		t.Fatal("two pings share an id")
	}
}

func TestAnInvalidScheduleIsAnError(t *testing.T) {
	ps := &sourcesv1.PingSource{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: sourcesv1.PingSourceSpec{Schedule: "nope"}}
	if _, err := ping.New(ps, &url.URL{}, 0, http.DefaultClient, zap.NewNop().Sugar()); err == nil {
		t.Fatal("New accepted the schedule \"nope\"")
	}
}
