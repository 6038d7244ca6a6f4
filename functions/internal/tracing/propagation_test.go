package tracing_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/testenv"
	"github.com/tickit/tickit/functions/internal/tracing"
)

const (
	orderID = "65a1b2c3d4e5f60718293a4c"
	// A caller's trace: W3C traceparent of trace callerTrace, span callerSpan, sampled.
	callerTrace = "0af7651916cd43dd8448eb211c80319c"
	callerSpan  = "b7ad6b7169203331"
	traceparent = "00-" + callerTrace + "-" + callerSpan + "-01"
	// Another trace, where an event was created.
	eventTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	eventSpan        = "00f067aa0ba902b7"
	eventTraceparent = "00-" + eventTrace + "-" + eventSpan + "-01"
)

var (
	installOnce sync.Once
	spans       *tracetest.InMemoryExporter
)

// recordSpans installs the SDK with an in-memory exporter (once: the provider is global) and
// empties it for the test.
func recordSpans(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	installOnce.Do(func() {
		spans = tracetest.NewInMemoryExporter()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans)))
	})
	spans.Reset()
	return spans
}

// span returns the one ended span named name, failing the test when there is not exactly one.
func span(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name)
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1; spans: %q", len(found), name, names)
	}
	return found[0]
}

func attr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func hasParent(t *testing.T, s tracetest.SpanStub, traceID, spanID string) {
	t.Helper()
	if s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != spanID {
		t.Fatalf("span %q is in trace %s under span %s, want trace %s under span %s",
			s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), traceID, spanID)
	}
}

// tracedFunction serves GET /api/orders/{id} (logging one line of its own) and handles
// expiration.completed: it replies with a payment.rejected, or fails retryably for order "...aaa".
func tracedFunction() runtime.Function {
	return runtime.Function{
		Name: "traced",
		Routes: func(mux *http.ServeMux) {
			mux.Handle("GET /api/orders/{id}", httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				logging.FromContext(r.Context()).Info("order looked up")
				httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
				return nil
			}))
		},
		Events: map[string]runtime.EventHandler{
			events.TypeExpirationCompleted: func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
				p, err := events.Decode[events.ExpirationCompleted](e)
				if err != nil {
					return nil, err
				}
				if p.OrderID == "65a1b2c3d4e5f60718293aaa" {
					return nil, errors.New("replica one version behind")
				}
				logging.FromContext(ctx).Info("order expired")
				reply := events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: orderID})
				return &reply, nil
			},
		},
	}
}

// serve runs fn's handler with a logger whose lines the test reads.
func serve(t *testing.T, fn runtime.Function) (*httptest.Server, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(logging.WithLogger(context.Background(), zap.New(core).Sugar()))
	srv := httptest.NewServer(runtime.Handler(ctx, fn))
	t.Cleanup(func() { srv.Close(); cancel() })
	return srv, logs
}

// everyLineNames checks that each log line carries trace_id traceID.
func everyLineNames(t *testing.T, logs *observer.ObservedLogs, traceID string) {
	t.Helper()
	if logs.Len() == 0 {
		t.Fatal("no log lines")
	}
	for _, l := range logs.All() {
		if got := l.ContextMap()["trace_id"]; got != traceID {
			t.Errorf("log line %q has trace_id %v, want %s", l.Message, got, traceID)
		}
	}
}

func TestRESTRequestJoinsTheCallersTrace(t *testing.T) {
	// Arrange
	exp := recordSpans(t)
	srv, logs := serve(t, tracedFunction())
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/orders/"+orderID, nil)
	req.Header.Set("traceparent", traceparent)

	// Act
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Assert: one server span under the caller's, named after the route, with the order id.
	s := span(t, exp, "GET /api/orders/{id}")
	hasParent(t, s, callerTrace, callerSpan)
	if s.SpanKind != trace.SpanKindServer || attr(s, "tickit.order.id").AsString() != orderID ||
		attr(s, "http.response.status_code").AsInt64() != http.StatusOK {
		t.Fatalf("span kind %v, attributes %v", s.SpanKind, s.Attributes)
	}
	everyLineNames(t, logs, callerTrace)
}

func TestCloudEventJoinsTheTraceOfItsExtensionInBothModes(t *testing.T) {
	for _, structured := range []bool{false, true} {
		// Arrange: the event was created in eventTrace; no traceparent header.
		exp := recordSpans(t)
		srv, logs := serve(t, tracedFunction())
		e := events.New(events.ExpirationCompleted{OrderID: orderID})
		e.SetExtension("traceparent", eventTraceparent)

		// Act
		status, reply := testenv.Send(t, srv.URL, e, structured)

		// Assert: the span is under the event's context, names the event and the order, and the
		// reply carries the span's context on.
		s := span(t, exp, "process "+events.TypeExpirationCompleted)
		hasParent(t, s, eventTrace, eventSpan)
		if attr(s, "cloudevents.id").AsString() != e.ID() || attr(s, "tickit.order.id").AsString() != orderID ||
			attr(s, "http.response.status_code").AsInt64() != int64(status) || status != http.StatusOK {
			t.Fatalf("structured=%v: status %d, attributes %v", structured, status, s.Attributes)
		}
		if reply == nil {
			t.Fatalf("structured=%v: no reply", structured)
		}
		want := "00-" + eventTrace + "-" + s.SpanContext.SpanID().String() + "-01"
		if got := reply.Extensions()["traceparent"]; got != want {
			t.Fatalf("structured=%v: reply traceparent %v, want %s", structured, got, want)
		}
		everyLineNames(t, logs, eventTrace)
	}
}

func TestCloudEventPrefersTheDeliveringHopsHeaderAndLinksItsOwnContext(t *testing.T) {
	// Arrange: the Broker delivers with its own traceparent header; the event was made elsewhere.
	exp := recordSpans(t)
	srv, _ := serve(t, tracedFunction())
	e := events.New(events.ExpirationCompleted{OrderID: "65a1b2c3d4e5f60718293aaa"})
	e.SetExtension("traceparent", eventTraceparent)
	req := httptest.NewRequest(http.MethodPost, srv.URL, nil)
	req.RequestURI = ""
	if err := cehttp.WriteRequest(binding.WithForceBinary(context.Background()), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", traceparent)

	// Act
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Assert: under the hop, linked to the event's context, marked as failed with the 503.
	s := span(t, exp, "process "+events.TypeExpirationCompleted)
	hasParent(t, s, callerTrace, callerSpan)
	if len(s.Links) != 1 || s.Links[0].SpanContext.TraceID().String() != eventTrace {
		t.Fatalf("links %v, want one to trace %s", s.Links, eventTrace)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || attr(s, "http.response.status_code").AsInt64() != 503 || s.Status.Code.String() != "Error" {
		t.Fatalf("status %d, span status %v, attributes %v", resp.StatusCode, s.Status, s.Attributes)
	}
}

func TestOutboxEventCarriesTheRequestsTraceToTheBroker(t *testing.T) {
	// Arrange: a request's span; its state change stores an event in the outbox.
	exp := recordSpans(t)
	ctx := testenv.Context(t)
	db := testenv.Store(t, "orders", nil)
	sink := testenv.NewSink(t)
	box := outbox.New(sink.Publisher(t), db, "orders")
	coll, _ := db.Collection(ctx, "orders")
	id := primitive.NewObjectID()
	ctx, request := tracing.Tracer().Start(ctx, "request")
	e := events.New(events.ExpirationCompleted{OrderID: orderID})
	if _, err := coll.UpdateOne(ctx, bson.M{"_id": id}, outbox.Add(ctx, bson.M{"$set": bson.M{"status": "x"}}, e), options.Update().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}

	// Act
	box.Deliver(ctx, "orders", id, e)
	request.End()

	// Assert: the published event names the request's context; the publish span is the
	// request's child, and the HTTP post to the Broker the publish span's.
	got := sink.WaitFor(t, events.TypeExpirationCompleted, 1)
	rc := request.SpanContext()
	want := "00-" + rc.TraceID().String() + "-" + rc.SpanID().String() + "-01"
	if tp := got[0].Extensions()["traceparent"]; tp != want {
		t.Fatalf("published traceparent %v, want %s", tp, want)
	}
	pub := span(t, exp, "publish "+events.TypeExpirationCompleted)
	hasParent(t, pub, rc.TraceID().String(), rc.SpanID().String())
	if pub.SpanKind != trace.SpanKindProducer || attr(pub, "tickit.order.id").AsString() != orderID {
		t.Fatalf("publish span kind %v, attributes %v", pub.SpanKind, pub.Attributes)
	}
	post := span(t, exp, "HTTP POST")
	hasParent(t, post, rc.TraceID().String(), pub.SpanContext.SpanID().String())
}

func TestFlushLaterStillBelongsToTheRequestThatCausedIt(t *testing.T) {
	// Arrange: a request stores an event and ends before it goes out (the process stopped).
	exp := recordSpans(t)
	ctx := testenv.Context(t)
	db := testenv.Store(t, "orders", nil)
	sink := testenv.NewSink(t)
	box := outbox.New(sink.Publisher(t), db, "orders")
	coll, _ := db.Collection(ctx, "orders")
	id := primitive.NewObjectID()
	reqCtx, request := tracing.Tracer().Start(ctx, "request")
	e := events.New(events.ExpirationCompleted{OrderID: orderID})
	if _, err := coll.UpdateOne(reqCtx, bson.M{"_id": id}, outbox.Add(reqCtx, bson.M{"$set": bson.M{"status": "x"}}, e), options.Update().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	request.End()

	// Act: a later request of another trace flushes it.
	laterCtx, later := tracing.Tracer().Start(ctx, "later request")
	if sent, err := box.Flush(laterCtx); err != nil || sent != 1 {
		t.Fatalf("flushed %d, %v; want 1", sent, err)
	}
	later.End()

	// Assert: published in the first request's trace, linked to the flushing one.
	rc := request.SpanContext()
	got := sink.WaitFor(t, events.TypeExpirationCompleted, 1)
	if tp := got[0].Extensions()["traceparent"]; tp != "00-"+rc.TraceID().String()+"-"+rc.SpanID().String()+"-01" {
		t.Fatalf("published traceparent %v, want the first request's", tp)
	}
	pub := span(t, exp, "publish "+events.TypeExpirationCompleted)
	hasParent(t, pub, rc.TraceID().String(), rc.SpanID().String())
	if len(pub.Links) != 1 || pub.Links[0].SpanContext.TraceID() != later.SpanContext().TraceID() {
		t.Fatalf("publish span links %v, want one to the flushing request's trace", pub.Links)
	}
}
