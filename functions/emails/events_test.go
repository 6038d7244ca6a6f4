package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/store"
	"github.com/tickit/tickit/functions/internal/testenv"
)

const apiKey = "SG.test-key"

// sentMail is the part of SendGrid's v3 mail/send body the tests check.
type sentMail struct {
	Personalizations []struct {
		To []struct {
			Email string `json:"email"`
		} `json:"to"`
	} `json:"personalizations"`
	From struct {
		Email string `json:"email"`
	} `json:"from"`
	Subject    string            `json:"subject"`
	CustomArgs map[string]string `json:"custom_args"`
	Content    []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"content"`
}

// sendGrid stands in for api.sendgrid.com: it checks every request as SendGrid would, answers
// with the queued statuses (then 202), and can hold requests until released.
type sendGrid struct {
	URL string

	mu       sync.Mutex
	statuses []int
	requests []sentMail // every request, whatever it was answered
	accepted int
	hold     chan struct{} // when set, requests wait for it to close
	arrived  chan struct{} // a request arrived (buffered)
}

func newSendGrid(t testing.TB, statuses ...int) *sendGrid {
	s := &sendGrid{statuses: statuses, arrived: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" {
			t.Errorf("SendGrid got %s %s, want POST /v3/mail/send", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+apiKey {
			t.Errorf("Authorization %q, want Bearer %s", got, apiKey)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var m sentMail
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("body is not JSON: %v", err)
		}
		s.mu.Lock()
		s.requests = append(s.requests, m)
		hold := s.hold
		status := http.StatusAccepted
		if len(s.statuses) > 0 {
			status, s.statuses = s.statuses[0], s.statuses[1:]
		}
		if status < 300 {
			s.accepted++
		}
		s.mu.Unlock()
		select {
		case s.arrived <- struct{}{}:
		default: // nobody waits for arrivals beyond the buffer
		}
		if hold != nil {
			<-hold
		}
		w.WriteHeader(status)
		if status >= 400 {
			fmt.Fprintf(w, `{"errors":[{"message":"status %d from the stand-in"}]}`, status)
		}
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// holdRequests makes requests wait until release is called.
func (s *sendGrid) holdRequests() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
	return func() { close(s.hold) }
}

func (s *sendGrid) counts() (requests, accepted int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests), s.accepted
}

func (s *sendGrid) last(t *testing.T) sentMail {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		t.Fatal("SendGrid got no request")
	}
	return s.requests[len(s.requests)-1]
}

type env struct {
	x   *Emails
	db  *store.DB
	sg  *sendGrid
	url string
}

// setup runs the emails function with SendGrid at sg (nil: no SENDGRID_API_KEY).
func setup(t testing.TB, sg *sendGrid) env {
	t.Helper()
	db := testenv.Store(t, "emails", nil)
	var sender *SendGrid
	if sg != nil {
		sender = NewSendGrid(apiKey, sg.URL, DefaultSendTimeout)
	}
	x := New(db, "tickets@tickit.dev", sender)
	return env{x: x, db: db, sg: sg, url: testenv.Serve(t, x.Function()).URL}
}

func newID() string { return primitive.NewObjectID().Hex() }

func completedOrder(id, title string) events.OrderCompleted {
	return events.OrderCompleted{ID: id, Version: 1, UserID: newID(), UserEmail: "buyer@example.com",
		Ticket: events.OrderTicket{ID: newID(), Title: title, Price: 1999}, PaymentID: newID()}
}

func (v env) send(t *testing.T, e cloudevents.Event, want int) {
	t.Helper()
	if got, _ := testenv.Send(t, v.url, e, false); got != want {
		t.Fatalf("order.completed answered %d, want %d", got, want)
	}
}

func (v env) record(t *testing.T, orderID string) Record {
	t.Helper()
	coll, err := v.db.Collection(context.Background(), collection)
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := coll.FindOne(context.Background(), bson.M{"_id": orderID}).Decode(&r); err != nil {
		t.Fatalf("record of order %s: %v", orderID, err)
	}
	return r
}

func TestACompletedOrderSendsOneConfirmationThroughSendGrid(t *testing.T) {
	testenv.OnEachStore(t, testACompletedOrderSendsOneConfirmationThroughSendGrid)
}

func testACompletedOrderSendsOneConfirmationThroughSendGrid(t *testing.T) {
	// Arrange
	v := setup(t, newSendGrid(t))
	o := completedOrder(newID(), "Concert, row 7")

	// Act
	v.send(t, events.New(o), http.StatusAccepted)

	// Assert: the request SendGrid got, field by field.
	if n, ok := v.sg.counts(); n != 1 || ok != 1 {
		t.Fatalf("SendGrid got %d requests (%d accepted), want 1", n, ok)
	}
	m := v.sg.last(t)
	if len(m.Personalizations) != 1 || len(m.Personalizations[0].To) != 1 || m.Personalizations[0].To[0].Email != o.UserEmail {
		t.Fatalf("personalizations %+v, want one recipient %s", m.Personalizations, o.UserEmail)
	}
	if m.From.Email != "tickets@tickit.dev" || m.Subject != "Your ticket: Concert, row 7" {
		t.Fatalf("from %q subject %q", m.From.Email, m.Subject)
	}
	if m.CustomArgs["order_id"] != o.ID {
		t.Fatalf("custom_args %v, want order_id %s (finds the message in SendGrid's activity feed)", m.CustomArgs, o.ID)
	}
	if len(m.Content) != 2 || m.Content[0].Type != "text/plain" || m.Content[1].Type != "text/html" {
		t.Fatalf("content %+v, want text/plain then text/html", m.Content)
	}
	for _, c := range m.Content {
		for _, want := range []string{"Concert, row 7", "$19.99", o.ID, o.PaymentID} {
			if !strings.Contains(c.Value, want) {
				t.Fatalf("%s content lacks %q:\n%s", c.Type, want, c.Value)
			}
		}
	}
	if r := v.record(t, o.ID); r.Status != StatusSent || r.To != o.UserEmail || r.Attempts != 1 {
		t.Fatalf("record %+v, want sent to %s on the first attempt", r, o.UserEmail)
	}
}

func TestDuplicateDeliveriesSendOneEmail(t *testing.T) {
	testenv.OnEachStore(t, testDuplicateDeliveriesSendOneEmail)
}

func testDuplicateDeliveriesSendOneEmail(t *testing.T) {
	// Arrange
	v := setup(t, newSendGrid(t))
	e := events.New(completedOrder(newID(), "Concert"))

	// Act
	for range 3 {
		v.send(t, e, http.StatusAccepted)
	}

	// Assert
	if n, _ := v.sg.counts(); n != 1 {
		t.Fatalf("SendGrid got %d requests for one order, want 1", n)
	}
}

func TestTwentyConcurrentDeliveriesSendOneEmail(t *testing.T) {
	testenv.OnEachAtomicStore(t, testTwentyConcurrentDeliveriesSendOneEmail)
}

func testTwentyConcurrentDeliveriesSendOneEmail(t *testing.T) {
	// Arrange: SendGrid holds the first send, so the other deliveries arrive while it is in flight.
	sg := newSendGrid(t)
	release := sg.holdRequests()
	v := setup(t, sg)
	e := events.New(completedOrder(newID(), "Concert"))
	handle := v.x.Function().Events[events.TypeOrderCompleted]
	ctx := testenv.Context(t)
	results := make(chan error, 20)
	var wg sync.WaitGroup

	// Act
	for range 20 {
		wg.Go(func() {
			_, err := handle(ctx, e)
			results <- err
		})
	}
	testenv.Receive(t, sg.arrived, time.Minute, "the first delivery's request at SendGrid")
	// The owner is held, so the first 19 answers are the other deliveries'.
	for range 19 {
		if err := testenv.Receive(t, results, time.Minute, "a delivery's answer"); !errors.Is(err, ErrInFlight) {
			t.Errorf("a delivery during the send returned %v, want ErrInFlight (503, look again later)", err)
		}
	}
	v.send(t, e, http.StatusServiceUnavailable) // the same, through HTTP
	release()
	testenv.Wait(t, &wg, 5*time.Minute, "the held delivery to finish")
	if err := testenv.Receive(t, results, time.Minute, "the sending delivery's answer"); err != nil {
		t.Fatalf("the sending delivery returned %v", err)
	}
	// The Broker redelivers the 503s: all are done now.
	for range 20 {
		wg.Go(func() {
			_, err := handle(ctx, e)
			results <- err
		})
	}
	testenv.Wait(t, &wg, 5*time.Minute, "the redeliveries")
	close(results)

	// Assert
	for err := range results {
		if err != nil {
			t.Fatalf("a redelivery returned %v, want done", err)
		}
	}
	if n, _ := sg.counts(); n != 1 {
		t.Fatalf("SendGrid got %d requests for one order, want 1", n)
	}
}

func TestARetryableSendGridAnswerIs503ThenTheRetrySends(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			// Arrange
			v := setup(t, newSendGrid(t, status))
			o := completedOrder(newID(), "Concert")
			e := events.New(o)

			// Act + Assert: first delivery fails retryably, the Broker's retry sends.
			v.send(t, e, http.StatusServiceUnavailable)
			if r := v.record(t, o.ID); r.Status != StatusRetry || !strings.Contains(r.Reason, fmt.Sprint(status)) {
				t.Fatalf("record %+v after a %d, want retry naming the status", r, status)
			}
			v.send(t, e, http.StatusAccepted)
			if r := v.record(t, o.ID); r.Status != StatusSent || r.Attempts != 2 {
				t.Fatalf("record %+v after the retry, want sent on attempt 2", r)
			}
			v.send(t, e, http.StatusAccepted)
			if n, ok := v.sg.counts(); n != 2 || ok != 1 {
				t.Fatalf("SendGrid got %d requests, %d accepted; want 2 and 1", n, ok)
			}
		})
	}
}

func TestSendGridUnreachableIs503(t *testing.T) {
	// Arrange: nothing listens at SENDGRID_API_BASE.
	db := testenv.Store(t, "emails", nil)
	x := New(db, "tickets@tickit.dev", NewSendGrid(apiKey, fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), DefaultSendTimeout))
	url := testenv.Serve(t, x.Function()).URL
	o := completedOrder(newID(), "Concert")

	// Act
	status, _ := testenv.Send(t, url, events.New(o), false)

	// Assert
	if status != http.StatusServiceUnavailable {
		t.Fatalf("answered %d with SendGrid unreachable, want 503", status)
	}
	v := env{db: db}
	if r := v.record(t, o.ID); r.Status != StatusRetry {
		t.Fatalf("record %+v, want retry", r)
	}
}

func TestARejectedEmailIsRecordedAsFailedAndNeverRetried(t *testing.T) {
	testenv.OnEachStore(t, testARejectedEmailIsRecordedAsFailedAndNeverRetried)
}

func testARejectedEmailIsRecordedAsFailedAndNeverRetried(t *testing.T) {
	// Arrange
	v := setup(t, newSendGrid(t, http.StatusBadRequest))
	o := completedOrder(newID(), "Concert")
	e := events.New(o)

	// Act: 2xx to the Broker, so it does not retry; a redelivery anyway changes nothing.
	v.send(t, e, http.StatusAccepted)
	v.send(t, e, http.StatusAccepted)

	// Assert
	if r := v.record(t, o.ID); r.Status != StatusFailed || !strings.Contains(r.Reason, "400") {
		t.Fatalf("record %+v, want failed naming the 400", r)
	}
	if n, _ := v.sg.counts(); n != 1 {
		t.Fatalf("SendGrid got %d requests, want 1 (no retry after a 400)", n)
	}
}

func TestWithoutAKeyTheEmailIsLoggedAndRecordedAsNotSent(t *testing.T) {
	// Arrange
	v := setup(t, nil)
	core, logs := observer.New(zap.InfoLevel)
	ctx := logging.WithLogger(context.Background(), zap.New(core).Sugar())
	o := completedOrder(newID(), "Concert, row 7")
	handle := v.x.Function().Events[events.TypeOrderCompleted]

	// Act
	_, err := handle(ctx, events.New(o))
	_, again := handle(ctx, events.New(o))

	// Assert
	if err != nil || again != nil {
		t.Fatalf("handler returned %v, then %v", err, again)
	}
	if r := v.record(t, o.ID); r.Status != StatusNotSent || r.Reason != "no SENDGRID_API_KEY" {
		t.Fatalf("record %+v, want not sent: no SENDGRID_API_KEY", r)
	}
	lines := logs.FilterMessage("not sent: no SENDGRID_API_KEY").All()
	if len(lines) != 1 {
		t.Fatalf("%d log lines with the email, want 1", len(lines))
	}
	if text, _ := lines[0].ContextMap()["text"].(string); !strings.Contains(text, "Concert, row 7") || lines[0].ContextMap()["to"] != o.UserEmail {
		t.Fatalf("log line %v does not show the email", lines[0].ContextMap())
	}
}

func TestADeliveryThatDiedMidSendIsTakenOverWhenItsLeaseEnds(t *testing.T) {
	testenv.OnEachStore(t, testADeliveryThatDiedMidSendIsTakenOverWhenItsLeaseEnds)
}

func testADeliveryThatDiedMidSendIsTakenOverWhenItsLeaseEnds(t *testing.T) {
	// Arrange: a delivery claimed the order and died before SendGrid answered.
	v := setup(t, newSendGrid(t))
	o := completedOrder(newID(), "Concert")
	now := time.Now()
	if _, err := v.x.records.Claim(testenv.Context(t), Confirmation("tickets@tickit.dev", o), o.ID, now, now.Add(v.x.lease)); err != nil {
		t.Fatal(err)
	}

	// Act + Assert: during the lease the redelivery waits (503); after it, it sends.
	v.x.Now = func() time.Time { return now.Add(v.x.lease / 2) }
	v.send(t, events.New(o), http.StatusServiceUnavailable)
	if n, _ := v.sg.counts(); n != 0 {
		t.Fatalf("SendGrid got %d requests during the owner's lease", n)
	}
	v.x.Now = func() time.Time { return now.Add(v.x.lease) }
	v.send(t, events.New(o), http.StatusAccepted)
	if n, _ := v.sg.counts(); n != 1 {
		t.Fatalf("SendGrid got %d requests after the lease, want 1", n)
	}
	if r := v.record(t, o.ID); r.Status != StatusSent || r.Attempts != 2 || r.Unknowns != 1 {
		t.Fatalf("record %+v, want sent on attempt 2 after 1 unknown outcome (the dead sender's)", r)
	}
}

func TestAMalformedOrderCompletedIsNeverTaken(t *testing.T) {
	// Arrange
	v := setup(t, newSendGrid(t))
	o := completedOrder(newID(), "Concert")
	o.UserEmail = "nobody"

	// Act
	v.send(t, events.New(o), http.StatusInternalServerError) // never taken: retried, then dead-lettered

	// Assert
	if n, _ := v.sg.counts(); n != 0 {
		t.Fatalf("SendGrid got %d requests for a malformed event", n)
	}
}

func TestTheDatabaseDownIs503(t *testing.T) {
	// Arrange: a MONGO_URL that cannot be opened.
	sg := newSendGrid(t)
	x := New(store.New("nowhere:", "emails", nil), "tickets@tickit.dev", NewSendGrid(apiKey, sg.URL, DefaultSendTimeout))
	url := testenv.Serve(t, x.Function()).URL

	// Act
	status, _ := testenv.Send(t, url, events.New(completedOrder(newID(), "Concert")), false)

	// Assert: nothing is sent before the order is recorded.
	if n, _ := sg.counts(); status != http.StatusServiceUnavailable || n != 0 {
		t.Fatalf("answered %d after %d sends, want 503 and none", status, n)
	}
}

// BenchmarkConfirmations measures emails sent per second: claim, compose, send to the
// SendGrid stand-in over HTTP, record.
func BenchmarkConfirmations(b *testing.B) {
	v := setup(b, newSendGrid(b))
	handle := v.x.Function().Events[events.TypeOrderCompleted]
	ctx := testenv.Context(b)
	b.ResetTimer()
	for range b.N {
		if _, err := handle(ctx, events.New(completedOrder(newID(), "Concert"))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
}

func TestAHungSendGridTimesOutAs503WithAnUnknownOutcome(t *testing.T) {
	// Arrange: SendGrid never answers; the client's timeout is shortened for the test.
	sg := newSendGrid(t)
	t.Cleanup(sg.holdRequests())
	v := setup(t, sg)
	v.x.sendgrid = NewSendGrid(apiKey, sg.URL, 100*time.Millisecond)
	o := completedOrder(newID(), "Concert")

	// Act
	v.send(t, events.New(o), http.StatusServiceUnavailable)

	// Assert: the request went out and no answer came: SendGrid may have it.
	if r := v.record(t, o.ID); r.Status != StatusUnknown || r.Unknowns != 1 || !strings.Contains(r.Reason, "may or may not have accepted") {
		t.Fatalf("record %+v, want unknown (1) after a timeout", r)
	}
}

// deliver runs one delivery the way the Broker makes it: it waits for the answer at most
// patience, then hangs up (its timeout, or the Service's) and counts the delivery as failed.
func deliver(t *testing.T, v env, e cloudevents.Event, patience time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(testenv.Context(t), patience)
	defer cancel()
	_, err := v.x.Function().Events[events.TypeOrderCompleted](ctx, e)
	return err
}

func TestASendGridSlowerThanTheBrokerSendsOneEmail(t *testing.T) {
	// Arrange: SendGrid answers 202 only when released, long after the Broker hung up on the
	// first delivery (issue 17: a 202 after 11 s sent 6 emails in 90 s, one per retry).
	sg := newSendGrid(t)
	release := sg.holdRequests()
	v := setup(t, sg)
	o := completedOrder(newID(), "Concert")
	e := events.New(o)
	first := make(chan error, 1)
	ctx, brokerHangsUp := context.WithCancel(testenv.Context(t))
	go func() {
		_, err := v.x.Function().Events[events.TypeOrderCompleted](ctx, e)
		first <- err
	}()
	testenv.Receive(t, sg.arrived, time.Minute, "the first delivery's request at SendGrid")

	// Act: the Broker gives up on the first delivery and retries, again and again.
	brokerHangsUp()
	for i := range 5 {
		if err := deliver(t, v, e, 2*time.Second); !errors.Is(err, ErrInFlight) {
			t.Errorf("retry %d while SendGrid is slow returned %v, want ErrInFlight (503, nothing sent)", i+1, err)
		}
	}
	release()
	testenv.Receive(t, first, time.Minute, "the first delivery to finish after SendGrid's answer")

	// Assert: the slow 202 was recorded; the next retry is done.
	if err := deliver(t, v, e, 10*time.Second); err != nil {
		t.Fatalf("the retry after SendGrid answered returned %v, want done", err)
	}
	if n, _ := sg.counts(); n != 1 {
		t.Fatalf("SendGrid got %d requests for one order, want 1", n)
	}
	if r := v.record(t, o.ID); r.Status != StatusSent || r.Unknowns != 0 {
		t.Fatalf("record %+v, want sent with no unknown outcome", r)
	}
}

func TestAnAnswerLaterThanTheTimeoutIsTriedOnceMoreThenNever(t *testing.T) {
	// Arrange: SendGrid accepts every request but answers only after SENDGRID_TIMEOUT (short
	// here), so every try's outcome is unknown.
	sg := newSendGrid(t)
	t.Cleanup(sg.holdRequests())
	v := setup(t, sg)
	v.x.sendgrid = NewSendGrid(apiKey, sg.URL, 100*time.Millisecond)
	o := completedOrder(newID(), "Concert")
	e := events.New(o)

	// Act: the Broker delivers ten times (its retries).
	var errs []error
	for range 10 {
		errs = append(errs, deliver(t, v, e, 10*time.Second))
	}

	// Assert: the bound, 1+MaxUnknownRetries emails; then the record is final.
	if n, ok := sg.counts(); n != 1+MaxUnknownRetries || ok != n {
		t.Fatalf("SendGrid got %d requests (%d accepted), want %d", n, ok, 1+MaxUnknownRetries)
	}
	if !errors.Is(errs[0], ErrUnknown) {
		t.Fatalf("first delivery returned %v, want ErrUnknown (503: one more try)", errs[0])
	}
	for i, err := range errs[1+MaxUnknownRetries:] {
		if err != nil {
			t.Fatalf("delivery %d returned %v, want done (2xx)", i+2+MaxUnknownRetries, err)
		}
	}
	if r := v.record(t, o.ID); r.Status != StatusMaybeSent || r.Unknowns != 1+MaxUnknownRetries {
		t.Fatalf("record %+v, want maybe sent after %d unknown outcomes", r, 1+MaxUnknownRetries)
	}
}

func TestCrashesAfterSendGridAcceptedSendAtMostTwoEmails(t *testing.T) {
	// Arrange: a delivery claims the order, SendGrid accepts its email, and the process dies
	// before recording it. Twice in a row.
	v := setup(t, newSendGrid(t))
	o := completedOrder(newID(), "Concert")
	m := Confirmation("tickets@tickit.dev", o)
	ctx := testenv.Context(t)
	now := time.Now()
	crash := func(at time.Time) {
		t.Helper()
		if _, err := v.x.records.Claim(ctx, m, o.ID, at, at.Add(v.x.lease)); err != nil {
			t.Fatalf("claim at %v: %v", at, err)
		}
		if err := v.x.sendgrid.Send(ctx, m); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	crash(now)
	crash(now.Add(v.x.lease)) // a redelivery after the first lease took over, and died too

	// Act: every later redelivery, after the second lease.
	v.x.Now = func() time.Time { return now.Add(2 * v.x.lease) }
	for range 5 {
		v.send(t, events.New(o), http.StatusAccepted)
	}

	// Assert
	if n, ok := v.sg.counts(); ok != 1+MaxUnknownRetries || n != ok {
		t.Fatalf("SendGrid accepted %d of %d requests, want %d", ok, n, 1+MaxUnknownRetries)
	}
	if r := v.record(t, o.ID); r.Status != StatusMaybeSent || r.Unknowns != 2 {
		t.Fatalf("record %+v, want maybe sent after 2 unknown outcomes", r)
	}
}
