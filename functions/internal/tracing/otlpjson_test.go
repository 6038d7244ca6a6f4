package tracing

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestSpansGoOutAsOTLPJSON(t *testing.T) {
	// Arrange: a receiver that keeps the one request; the exporter pointed at it by the environment.
	var got map[string]any
	var path, contentType, auth string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, contentType, auth = r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("not JSON: %v: %s", err, b)
		}
	}))
	defer rcv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20x")
	exp, err := newOTLPJSON()
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	_, child := tp.Tracer("test").Start(ctx, "child", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("tickit.order.id", "o1"), attribute.Int("http.response.status_code", 503)))

	// Act
	child.SetStatus(codes.Error, "503")
	child.End()

	// Assert
	if path != "/v1/traces" || contentType != "application/json" || auth != "Bearer x" {
		t.Fatalf("posted to %q as %q with Authorization %q", path, contentType, auth)
	}
	span := got["resourceSpans"].([]any)[0].(map[string]any)["scopeSpans"].([]any)[0].(map[string]any)["spans"].([]any)[0].(map[string]any)
	want := map[string]any{
		"traceId": parent.SpanContext().TraceID().String(), "spanId": child.SpanContext().SpanID().String(),
		"parentSpanId": parent.SpanContext().SpanID().String(), "name": "child", "kind": 4.0,
		"status":     map[string]any{"code": 2.0, "message": "503"},
		"attributes": []any{map[string]any{"key": "tickit.order.id", "value": map[string]any{"stringValue": "o1"}}, map[string]any{"key": "http.response.status_code", "value": map[string]any{"intValue": "503"}}},
	}
	for k, v := range want {
		if b1, b2 := mustJSON(span[k]), mustJSON(v); b1 != b2 {
			t.Errorf("%s = %s, want %s", k, b1, b2)
		}
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
