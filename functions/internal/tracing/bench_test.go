package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// discard is an exporter that drops every batch: the benchmark measures recording and
// batching spans, not the network.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracingCost: what tracing costs per request in a function, in process: a REST
// request and a CloudEvent, both arriving with a traceparent (as from Knative's Broker), with
// tracing off (nothing configured: the no-op provider) and on (the SDK recording every span,
// batched to an exporter that drops them). make bench prints both; the difference is the cost.
func BenchmarkTracingCost(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		if mode == "off" {
			otel.SetTracerProvider(noop.NewTracerProvider())
		} else {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			otel.SetTracerProvider(tp)
		}
		h := runtime.Handler(testenv.Context(b), tracedFunction())
		b.Run("rest/tracing="+mode, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, "/api/orders/"+orderID, nil)
				req.Header.Set("traceparent", traceparent)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
		b.Run("event/tracing="+mode, func(b *testing.B) {
			e := events.New(events.ExpirationCompleted{OrderID: orderID})
			ctx := binding.WithForceBinary(context.Background())
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodPost, "/", nil)
				if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
					b.Fatal(err)
				}
				req.Header.Set("traceparent", traceparent)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
