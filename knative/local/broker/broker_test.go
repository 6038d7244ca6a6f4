package broker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/broker"
)

// --- the test world: an embedded NATS, a Broker, its ingress, and small subscribers ---

const ns = "tickit"

func startNATS(t testing.TB, dir string) *backing.NATS {
	t.Helper()
	n, err := backing.StartNATS(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

type world struct {
	broker  *broker.Broker
	ingress string // URL of POST /tickit/default
}

func start(t testing.TB, n *backing.NATS, parallel int, triggers ...*eventingv1.Trigger) *world {
	return startWith(t, n, broker.Config{Parallel: parallel}, triggers...)
}

func startWith(t testing.TB, n *backing.NATS, cfg broker.Config, triggers ...*eventingv1.Trigger) *world {
	t.Helper()
	cfg.Broker = &eventingv1.Broker{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	cfg.Triggers, cfg.JS = triggers, n.JS
	cfg.Resolve = func(d duckv1.Destination) (*url.URL, error) { return d.URI.URL(), nil }
	b, err := broker.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	srv := httptest.NewServer(broker.Ingress(b))
	t.Cleanup(srv.Close)
	return &world{broker: b, ingress: srv.URL + "/tickit/default"}
}

// subscriber records what it receives and answers with whatever answer returns.
type subscriber struct {
	*httptest.Server
	mu       sync.Mutex
	received []cloudevents.Event
	headers  []http.Header
	answer   func(e cloudevents.Event, n int) (int, *cloudevents.Event) // n: deliveries of this id so far
}

func newSubscriber(t *testing.T, answer func(e cloudevents.Event, n int) (int, *cloudevents.Event)) *subscriber {
	s := &subscriber{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			t.Errorf("the subscriber got a request that is not a CloudEvent: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.received = append(s.received, *e)
		s.headers = append(s.headers, r.Header.Clone())
		n := s.count(e.ID())
		s.mu.Unlock()
		code, reply := http.StatusAccepted, (*cloudevents.Event)(nil)
		if s.answer != nil {
			code, reply = s.answer(*e, n)
		}
		if reply != nil {
			_ = cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(reply), code, w)
			return
		}
		w.WriteHeader(code)
		if code/100 != 2 { // a 2xx body that is not an event is a failure (the filter's 502)
			fmt.Fprintf(w, "answer %d", code)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *subscriber) count(id string) int {
	n := 0
	for _, e := range s.received {
		if e.ID() == id {
			n++
		}
	}
	return n
}

// Count returns how many times the event id was delivered.
func (s *subscriber) Count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count(id)
}

func (s *subscriber) Received() []cloudevents.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cloudevents.Event(nil), s.received...)
}

func ok(cloudevents.Event, int) (int, *cloudevents.Event) { return http.StatusOK, nil }

type option func(*eventingv1.Trigger)

func trigger(name, subscriberURL string, opts ...option) *eventingv1.Trigger {
	u, err := apis.ParseURL(subscriberURL)
	if err != nil {
		panic(err)
	}
	t := &eventingv1.Trigger{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       eventingv1.TriggerSpec{Broker: "default", Subscriber: duckv1.Destination{URI: u}},
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

func delivery(retry int32, policy eventingduckv1.BackoffPolicyType, delay, timeout string) option {
	return func(t *eventingv1.Trigger) {
		t.Spec.Delivery = &eventingduckv1.DeliverySpec{Retry: &retry, BackoffPolicy: &policy, BackoffDelay: &delay}
		if timeout != "" {
			t.Spec.Delivery.Timeout = &timeout
		}
	}
}

func deadLetterSink(sinkURL string) option {
	return func(t *eventingv1.Trigger) {
		u, _ := apis.ParseURL(sinkURL)
		if t.Spec.Delivery == nil {
			t.Spec.Delivery = &eventingduckv1.DeliverySpec{}
		}
		t.Spec.Delivery.DeadLetterSink = &duckv1.Destination{URI: u}
	}
}

func attributesFilter(attrs map[string]string) option {
	return func(t *eventingv1.Trigger) {
		t.Spec.Filter = &eventingv1.TriggerFilter{Attributes: attrs}
	}
}

func filters(f ...eventingv1.SubscriptionsAPIFilter) option {
	return func(t *eventingv1.Trigger) { t.Spec.Filters = f }
}

func event(id, typ string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource("/tickit/test")
	e.SetSubject("s-" + id)
	_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{"id": id})
	return e
}

// send posts e to the ingress in binary or structured mode and returns the status.
func send(t *testing.T, ingress string, e cloudevents.Event, structured bool) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ingress, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := binding.ToMessage(&e)
	ctx := context.Background()
	if structured {
		ctx = binding.WithForceStructured(ctx)
	}
	if err := cehttp.WriteRequest(ctx, msg, req); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func mustSend(t *testing.T, ingress string, e cloudevents.Event) {
	t.Helper()
	if code := send(t, ingress, e, false); code != http.StatusAccepted {
		t.Fatalf("ingress answered %d to event %s, want 202", code, e.ID())
	}
}

// eventually waits for cond; the deadline only bounds a hung test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFor is how long a test waits for something the Broker should do in well under a second;
// it only bounds a hung test.
const waitFor = 20 * time.Second

// client is the tests' HTTP client: no request waits longer than waitFor.
var client = &http.Client{Timeout: waitFor}

// nextRecord reads the feed until a record matches and returns it; the deadline, or the feed
// closing, fails the test with what it was waiting for and the latest records it saw.
func nextRecord(t *testing.T, records <-chan broker.Record, what string, match func(broker.Record) bool) broker.Record {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	var seen []string
	for {
		select {
		case rec, ok := <-records:
			if !ok {
				t.Fatalf("the feed closed while waiting for %s; saw %v", what, seen)
			}
			if match(rec) {
				return rec
			}
			if seen = append(seen, fmt.Sprintf("%s:%s:%d", rec.Stage, rec.Event.ID, rec.Attempt)); len(seen) > 20 {
				seen = seen[1:] // the latest 20 are enough to tell what went on
			}
		case <-deadline.C:
			t.Fatalf("gave up after %v waiting for %s; saw %v", waitFor, what, seen)
		}
	}
}

// stage matches the records of one stage of one event.
func stage(st, id string) func(broker.Record) bool {
	return func(r broker.Record) bool { return r.Stage == st && r.Event.ID == id }
}

func deadLetters(t *testing.T, b *broker.Broker) []broker.DeadLetter {
	t.Helper()
	list, err := b.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// --- ingress ---

func TestIngressAcceptsBinaryAndStructuredEvents(t *testing.T) {
	sub := newSubscriber(t, ok)
	w := start(t, startNATS(t, t.TempDir()), 0, trigger("all", sub.URL))

	if code := send(t, w.ingress, event("binary-1", "dev.tickit.test"), false); code != http.StatusAccepted {
		t.Fatalf("binary mode: status %d, want 202", code)
	}
	if code := send(t, w.ingress, event("structured-1", "dev.tickit.test"), true); code != http.StatusAccepted {
		t.Fatalf("structured mode: status %d, want 202", code)
	}

	eventually(t, "both events delivered", func() bool { return sub.Count("binary-1") == 1 && sub.Count("structured-1") == 1 })
	for _, e := range sub.Received() {
		if e.Subject() != "s-"+e.ID() || !bytes.Contains(e.Data(), []byte(e.ID())) {
			t.Errorf("event %s arrived changed: subject %q data %s", e.ID(), e.Subject(), e.Data())
		}
		if _, err := e.Context.GetExtension(broker.TTLExtension); err == nil {
			t.Errorf("event %s carries the Broker's hop count to the subscriber", e.ID())
		}
	}
}

func TestIngressRejectsWhatIsNotAValidEventAndUnknownBrokers(t *testing.T) {
	w := start(t, startNATS(t, t.TempDir()), 0)
	base := strings.TrimSuffix(w.ingress, "/tickit/default")
	cases := []struct {
		name, method, url, contentType, body string
		headers                              map[string]string
		want                                 int
	}{
		{"no CloudEvent headers", "POST", w.ingress, "application/json", `{"a":1}`, nil, 400},
		{"structured but not JSON", "POST", w.ingress, "application/cloudevents+json", `{not json`, nil, 400},
		{"structured without id", "POST", w.ingress, "application/cloudevents+json", `{"specversion":"1.0","type":"t","source":"/s"}`, nil, 400},
		{"binary without type", "POST", w.ingress, "application/json", `{}`, map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s"}, 400},
		{"unknown broker", "POST", base + "/tickit/other", "application/json", `{}`, map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, 404},
		{"unknown namespace", "POST", base + "/elsewhere/default", "application/json", `{}`, map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, 404},
		{"GET the ingress", "GET", w.ingress, "", "", nil, 405},
		// The real ingress answers 500: the NATS channel cannot marshal it (make conformance).
		{"data that is not the JSON it says", "POST", w.ingress, "application/json", `{"id": 12`, map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, 500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
		})
	}
}

// --- delivery ---

func TestRetryableAnswersAreRetriedUntilTheSubscriberTakesTheEvent(t *testing.T) {
	answers := []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusInternalServerError}
	sub := newSubscriber(t, func(e cloudevents.Event, n int) (int, *cloudevents.Event) {
		if n <= len(answers) {
			return answers[n-1], nil
		}
		return http.StatusOK, nil
	})
	w := start(t, startNATS(t, t.TempDir()), 0, trigger("t", sub.URL, delivery(5, eventingduckv1.BackoffPolicyLinear, "PT0.01S", "")))
	records, stop := w.broker.Feed().FollowFrom(0)
	defer stop()

	mustSend(t, w.ingress, event("e1", "dev.tickit.test"))

	var stages []string
	nextRecord(t, records, "e1 delivered or dead-lettered", func(rec broker.Record) bool {
		stages = append(stages, fmt.Sprintf("%s:%d", rec.Stage, rec.Attempt))
		return rec.Stage == broker.StageDelivered || rec.Stage == broker.StageDeadLettered
	})
	want := "accepted:0 retry:1 retry:2 retry:3 retry:4 delivered:5"
	if got := strings.Join(stages, " "); got != want {
		t.Fatalf("stages %q, want %q", got, want)
	}
	if n := sub.Count("e1"); n != 5 {
		t.Fatalf("delivered %d times, want 5", n)
	}
	if dl := deadLetters(t, w.broker); len(dl) != 0 {
		t.Fatalf("dead letters %v, want none", dl)
	}
}

// As the NATS channel's dispatcher: a final 4xx before the last attempt is terminated (dropped,
// no dead letter); the same answer on the last attempt (here the only one, retry 0) goes to the
// dead letters with Knative's error extensions.
func TestAFinal4xxIsDroppedUnlessItIsTheLastAttempt(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			sub := newSubscriber(t, func(cloudevents.Event, int) (int, *cloudevents.Event) { return code, nil })
			sink := newSubscriber(t, ok)
			w := start(t, startNATS(t, t.TempDir()), 0,
				trigger("retries", sub.URL, delivery(3, eventingduckv1.BackoffPolicyExponential, "PT0.01S", ""), deadLetterSink(sink.URL)),
				trigger("last", sub.URL, delivery(0, eventingduckv1.BackoffPolicyExponential, "PT0.01S", ""), deadLetterSink(sink.URL)))
			records, stop := w.broker.Feed().FollowFrom(0)
			defer stop()

			mustSend(t, w.ingress, event("bad", "dev.tickit.test"))

			dropped := nextRecord(t, records, "the dropped record", func(r broker.Record) bool { return r.Stage == broker.StageDropped && r.Trigger == "retries" })
			if dropped.Code != code || dropped.Attempt != 1 {
				t.Errorf("dropped record %+v, want code %d at attempt 1", dropped, code)
			}
			eventually(t, "a dead letter", func() bool { return len(deadLetters(t, w.broker)) == 1 })
			dl := deadLetters(t, w.broker)[0]
			if dl.Trigger != "last" || dl.Attempts != 1 || dl.Event.ID() != "bad" {
				t.Fatalf("dead letter %+v, want trigger last, 1 attempt, id bad", dl)
			}
			eventually(t, "the sink got the dead letter", func() bool { return sink.Count("bad") == 1 })
			if n := sub.Count("bad"); n != 2 {
				t.Fatalf("delivered %d times, want 2 (once per trigger, no retry of a %d)", n, code)
			}
			for _, got := range []cloudevents.Event{dl.Event, sink.Received()[0]} {
				ext := got.Extensions()
				if fmt.Sprint(ext["knativeerrorcode"]) != fmt.Sprint(code) {
					t.Errorf("knativeerrorcode = %v, want %d", ext["knativeerrorcode"], code)
				}
				if fmt.Sprint(ext["knativeerrordest"]) != sub.URL {
					t.Errorf("knativeerrordest = %v, want %s", ext["knativeerrordest"], sub.URL)
				}
				data, _ := base64.StdEncoding.DecodeString(fmt.Sprint(ext["knativeerrordata"]))
				if string(data) != fmt.Sprintf("answer %d", code) {
					t.Errorf("knativeerrordata decodes to %q, want the subscriber's answer", data)
				}
			}
			if n := len(sink.Received()); n != 1 {
				t.Errorf("the sink got %d events, want only the last attempt's", n)
			}
		})
	}
}

func TestDeadLetterAfterTheLastRetryThenReplayDeliversItToThatTriggerOnly(t *testing.T) {
	var mu sync.Mutex
	broken := true
	failing := newSubscriber(t, func(cloudevents.Event, int) (int, *cloudevents.Event) {
		mu.Lock()
		defer mu.Unlock()
		if broken {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	healthy := newSubscriber(t, ok)
	sink := newSubscriber(t, ok)
	w := start(t, startNATS(t, t.TempDir()), 0,
		trigger("failing", failing.URL, delivery(2, eventingduckv1.BackoffPolicyExponential, "PT0.01S", ""), deadLetterSink(sink.URL)),
		trigger("healthy", healthy.URL))

	mustSend(t, w.ingress, event("e1", "dev.tickit.test"))

	eventually(t, "a dead letter", func() bool { return len(deadLetters(t, w.broker)) == 1 })
	dl := deadLetters(t, w.broker)[0]
	if dl.Attempts != 3 || failing.Count("e1") != 3 {
		t.Fatalf("dead letter after %d attempts, subscriber saw %d; want 3 and 3 (1 + 2 retries)", dl.Attempts, failing.Count("e1"))
	}
	eventually(t, "the dead-letter sink got the event", func() bool { return sink.Count("e1") == 1 })
	if code := fmt.Sprint(sink.Received()[0].Extensions()["knativeerrorcode"]); code != "500" {
		t.Errorf("the sink's copy has knativeerrorcode %v, want 500", code)
	}

	mu.Lock()
	broken = false
	mu.Unlock()
	n, err := w.broker.Replay(context.Background(), "e1")
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1, nil", n, err)
	}

	eventually(t, "the replayed event delivered", func() bool { return failing.Count("e1") == 4 })
	replayed := failing.Received()[3]
	if _, err := replayed.Context.GetExtension("knativeerrorcode"); err == nil {
		t.Error("the replayed event still carries the error extensions")
	}
	if left := deadLetters(t, w.broker); len(left) != 0 {
		t.Fatalf("dead letters after replay: %d, want 0", len(left))
	}
	// The healthy trigger took the event the first time and must not get it again: a later
	// event proves its consumer moved past the replay.
	mustSend(t, w.ingress, event("e2", "dev.tickit.test"))
	eventually(t, "e2 at the healthy trigger", func() bool { return healthy.Count("e2") == 1 })
	if n := healthy.Count("e1"); n != 1 {
		t.Fatalf("the healthy trigger got e1 %d times, want 1", n)
	}
	if _, err := w.broker.Replay(context.Background(), "e1"); err != broker.ErrNoDeadLetter {
		t.Fatalf("second replay: %v, want ErrNoDeadLetter", err)
	}
}

func TestConnectionErrorsAndTimeoutsAreRetried(t *testing.T) {
	// A port nobody listens on: the listener is closed before the first delivery.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	slow := newSubscriber(t, func(e cloudevents.Event, n int) (int, *cloudevents.Event) {
		if n == 1 {
			time.Sleep(time.Second) // longer than the 0.2 s timeout
		}
		return http.StatusOK, nil
	})
	w := start(t, startNATS(t, t.TempDir()), 0,
		trigger("gone", gone.URL, delivery(1, eventingduckv1.BackoffPolicyLinear, "PT0.01S", "")),
		trigger("slow", slow.URL, delivery(3, eventingduckv1.BackoffPolicyLinear, "PT0.01S", "PT0.2S")))

	mustSend(t, w.ingress, event("e1", "dev.tickit.test"))

	eventually(t, "the slow subscriber answered in time once", func() bool { return slow.Count("e1") >= 2 })
	eventually(t, "a dead letter for the unreachable subscriber", func() bool { return len(deadLetters(t, w.broker)) == 1 })
	dl := deadLetters(t, w.broker)[0]
	if dl.Trigger != "gone" || dl.Attempts != 2 {
		t.Fatalf("dead letter %s after %d attempts, want gone after 2", dl.Trigger, dl.Attempts)
	}
	data, _ := base64.StdEncoding.DecodeString(fmt.Sprint(dl.Event.Extensions()["knativeerrordata"]))
	if !strings.Contains(string(data), "dispatch error") {
		t.Errorf("knativeerrordata = %q, want the dispatch error", data)
	}
}

func TestAReplyEventGoesBackIntoTheBroker(t *testing.T) {
	replier := newSubscriber(t, func(e cloudevents.Event, _ int) (int, *cloudevents.Event) {
		r := event("reply-to-"+e.ID(), "dev.tickit.reply")
		return http.StatusOK, &r
	})
	replies := newSubscriber(t, ok)
	w := start(t, startNATS(t, t.TempDir()), 0,
		trigger("asks", replier.URL, attributesFilter(map[string]string{"type": "dev.tickit.question"})),
		trigger("replies", replies.URL, attributesFilter(map[string]string{"type": "dev.tickit.reply"})))

	mustSend(t, w.ingress, event("q1", "dev.tickit.question"))

	eventually(t, "the reply delivered", func() bool { return replies.Count("reply-to-q1") == 1 })
	if n := replier.Count("q1"); n != 1 {
		t.Fatalf("the question was delivered %d times, want 1", n)
	}
}

func TestReplyLoopsEndAtTheHopLimit(t *testing.T) {
	// Every delivery answers with a new event of the same type: a loop, cut by the hop count.
	var mu sync.Mutex
	next := 0
	looper := newSubscriber(t, func(e cloudevents.Event, _ int) (int, *cloudevents.Event) {
		mu.Lock()
		next++
		r := event(fmt.Sprintf("loop-%d", next), e.Type())
		mu.Unlock()
		return http.StatusOK, &r
	})
	w := start(t, startNATS(t, t.TempDir()), 0, trigger("loop", looper.URL))
	records, stop := w.broker.Feed().FollowFrom(0)
	defer stop()

	first := event("loop-0", "dev.tickit.loop")
	first.SetExtension(broker.TTLExtension, 3) // three hops: the event, then two replies
	mustSend(t, w.ingress, first)

	nextRecord(t, records, "a reply dropped at the hop limit", func(r broker.Record) bool { return r.Stage == broker.StageDropped })
	if got := len(looper.Received()); got != 3 {
		t.Fatalf("the looping subscriber got %d events, want 3", got)
	}
}

func TestDuplicateEventIDsAreDropped(t *testing.T) {
	sub := newSubscriber(t, ok)
	w := start(t, startNATS(t, t.TempDir()), 1, trigger("t", sub.URL))

	mustSend(t, w.ingress, event("same", "dev.tickit.test"))
	mustSend(t, w.ingress, event("same", "dev.tickit.test")) // 202: accepted, then dropped
	mustSend(t, w.ingress, event("after", "dev.tickit.test"))

	// One delivery at a time, in stream order: once "after" arrived, a second "same" would have.
	eventually(t, "the later event delivered", func() bool { return sub.Count("after") == 1 })
	if n := sub.Count("same"); n != 1 {
		t.Fatalf("the duplicated id was delivered %d times, want 1", n)
	}
}

func TestEventsPublishedAtOnceAreEachDeliveredOnce(t *testing.T) {
	sub := newSubscriber(t, ok)
	w := start(t, startNATS(t, t.TempDir()), 0, trigger("t", sub.URL))
	const n = 200

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := send(t, w.ingress, event(fmt.Sprintf("e%d", i), "dev.tickit.test"), i%2 == 0); code != http.StatusAccepted {
				t.Errorf("event %d: status %d", i, code)
			}
		}()
	}
	wg.Wait()

	eventually(t, "every event delivered", func() bool { return len(sub.Received()) >= n })
	for i := range n {
		if c := sub.Count(fmt.Sprintf("e%d", i)); c != 1 {
			t.Errorf("event e%d delivered %d times, want 1", i, c)
		}
	}
}

func TestUndeliveredEventsAndDeadLettersSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	up := false
	sub := newSubscriber(t, func(e cloudevents.Event, _ int) (int, *cloudevents.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.ID() == "poison" {
			return http.StatusBadRequest, nil
		}
		if !up {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	})
	// The poison event is refused on its only attempt (retry 0), so it is dead-lettered.
	trig := func() []*eventingv1.Trigger {
		return []*eventingv1.Trigger{
			trigger("t", sub.URL, delivery(1000, eventingduckv1.BackoffPolicyLinear, "PT0.05S", ""),
				attributesFilter(map[string]string{"type": "dev.tickit.test"})),
			trigger("strict", sub.URL, delivery(0, eventingduckv1.BackoffPolicyLinear, "PT0.05S", ""),
				attributesFilter(map[string]string{"type": "dev.tickit.poison"})),
		}
	}
	n1, err := backing.StartNATS(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A short AckWait: messages waiting for a retry when the Broker stopped come back after it.
	cfg := broker.Config{AckWait: 500 * time.Millisecond}
	w1 := startWith(t, n1, cfg, trig()...)
	mustSend(t, w1.ingress, event("pending", "dev.tickit.test"))
	mustSend(t, w1.ingress, event("poison", "dev.tickit.poison"))
	eventually(t, "a first attempt and the dead letter", func() bool {
		return sub.Count("pending") >= 1 && len(deadLetters(t, w1.broker)) == 1
	})
	w1.broker.Close()
	n1.Close()

	mu.Lock()
	up = true
	mu.Unlock()
	w2 := startWith(t, startNATS(t, dir), cfg, trig()...)

	// From the new Broker's first record: it may deliver before this line runs.
	records, stop := w2.broker.Feed().FollowFrom(0)
	defer stop()
	nextRecord(t, records, "the pending event delivered after the restart", stage(broker.StageDelivered, "pending"))
	if dl := deadLetters(t, w2.broker); len(dl) != 1 || dl[0].Event.ID() != "poison" {
		t.Fatalf("dead letters after restart: %+v, want the poison event", dl)
	}
}

func TestTheFeedAndDeadLetterEndpointsServeOverHTTP(t *testing.T) {
	sub := newSubscriber(t, func(cloudevents.Event, int) (int, *cloudevents.Event) { return http.StatusBadRequest, nil })
	w := start(t, startNATS(t, t.TempDir()), 0, trigger("t", sub.URL))
	mustSend(t, w.ingress, event("e1", "dev.tickit.test"))

	// Following after the fact: ?after=0 replays the records kept. The request's deadline
	// bounds the reads.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.ingress+"/events?after=0", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var stages []string
	for len(stages) < 2 {
		var rec broker.Record
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("reading the feed after %v: %v", stages, err)
		}
		if rec.Seq != uint64(len(stages)+1) {
			t.Errorf("record %q has seq %d, want %d", rec.Stage, rec.Seq, len(stages)+1)
		}
		stages = append(stages, rec.Stage+" "+rec.Event.ID)
	}
	if got := strings.Join(stages, ", "); got != "accepted e1, dead-lettered e1" {
		t.Fatalf("feed %q", got)
	}

	var list []broker.DeadLetter
	getJSON(t, w.ingress+"/deadletters", &list)
	if len(list) != 1 || list[0].Event.ID() != "e1" {
		t.Fatalf("GET deadletters: %+v", list)
	}
	for _, c := range []struct {
		id   string
		want int
	}{{"nope", 404}, {"e1", 200}} {
		r, err := client.Post(w.ingress+"/deadletters/"+c.id+"/replay", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Fatalf("replay %s: %d, want %d", c.id, r.StatusCode, c.want)
		}
	}
	eventually(t, "the replay delivered", func() bool { return sub.Count("e1") == 2 })
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
