// Package tracing sets up OpenTelemetry for a function from the standard OTEL_* environment
// and holds the few helpers the shared packages need to join and pass on a trace: HTTP in and
// out (otelhttp), CloudEvents in and out (the distributed-tracing extension, traceparent and
// tracestate, through cloudevents sdk-go's OpenTelemetry carrier), and the ids a person
// searches a trace by.
//
// With nothing configured, Start installs no SDK: the global provider stays OpenTelemetry's
// no-op, so no span is recorded or exported, and only the W3C trace context of an incoming
// request is passed on (as Knative's own components do), which costs a header parse.
package tracing

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of tickit's own spans.
const Scope = "github.com/tickit/tickit/functions"

// Propagator is the W3C trace context (and baggage), the format of Knative's Brokers and of
// the CloudEvents distributed-tracing extension.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

func init() { otel.SetTextMapPropagator(Propagator) }

// Configured reports whether the environment asks for traces to be exported: an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER=otlp,
// unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
func Configured() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch os.Getenv("OTEL_TRACES_EXPORTER") {
	case "none":
		return false
	case "otlp":
		return true
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Start installs a tracer provider that exports over OTLP/HTTP in JSON (otlpjson.go) as the
// OTEL_* environment says (endpoint, headers, timeout; OTEL_TRACES_SAMPLER, OTEL_BSP_* batching
// are the SDK's), for service OTEL_SERVICE_NAME or else name. Nothing is connected until the
// first batch goes out. When tracing is not Configured it installs nothing. The returned
// function flushes and stops the exporter (call it at shutdown; it is safe either way).
func Start(ctx context.Context, name string) (shutdown func(context.Context) error, err error) {
	if !Configured() {
		return func(context.Context) error { return nil }, nil
	}
	if p := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/json" {
		return nil, errors.New("tracing: OTEL_EXPORTER_OTLP_PROTOCOL must be http/json (what tickit's exporter speaks), not " + p)
	}
	exp, err := newOTLPJSON()
	if err != nil {
		return nil, err
	}
	if os.Getenv("OTEL_SERVICE_NAME") != "" {
		name = os.Getenv("OTEL_SERVICE_NAME")
	}
	// Only the environment's attributes: host and process detectors would cost start-up time.
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithAttributes(attribute.String("service.name", name)))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Enabled reports whether spans are recorded: an SDK provider is installed (by Start, or by a
// test), or the environment configures one (so code that runs before Start may instrument).
func Enabled() bool {
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		return true
	}
	return Configured()
}

// Tracer is the tracer of tickit's own spans.
func Tracer() trace.Tracer { return otel.Tracer(Scope) }

// TraceID returns the trace id of ctx's span in hex, or "" when ctx is in no trace.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// Handler joins the trace of each incoming request's traceparent header, in a server span named
// after the request (Name renames it after routing) when spans are recorded; requests for which
// skip is true pass through untouched (health checks, and CloudEvents, whose trace may be in
// their body: see StartEvent).
func Handler(next http.Handler, skip func(*http.Request) bool) http.Handler {
	if !Enabled() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !skip(r) && r.Header.Get("traceparent") != "" {
				r = r.WithContext(Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
			}
			next.ServeHTTP(w, r)
		})
	}
	return otelhttp.NewHandler(next, "http", otelhttp.WithFilter(func(r *http.Request) bool { return !skip(r) }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
}

// Name renames the request's span after the route that serves it ("GET /api/orders/{id}") and
// records the entity id of the path ({id} under /api/orders is tickit.order.id).
func Name(r *http.Request, pattern string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() || pattern == "" {
		return
	}
	span.SetName(pattern)
	if id := r.PathValue("id"); id != "" {
		if entity := pathEntity(r.URL.Path); entity != "" {
			span.SetAttributes(attribute.String("tickit."+entity+".id", id))
		}
	}
}

// pathEntity is the entity an /api/<plural>/{id} path names: "order" for /api/orders/....
func pathEntity(path string) string {
	rest, ok := strings.CutPrefix(path, "/api/")
	if !ok {
		return ""
	}
	plural, _, _ := strings.Cut(rest, "/")
	return strings.TrimSuffix(plural, "s")
}

// Transport passes the trace on to the server called through base, with a client span per
// request when spans are recorded.
func Transport(base http.RoundTripper) http.RoundTripper {
	if !Enabled() {
		return injector{base}
	}
	return otelhttp.NewTransport(base)
}

// injector sets the traceparent header of outgoing requests when no span is recorded.
type injector struct{ base http.RoundTripper }

func (t injector) RoundTrip(r *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(r.Context()).IsValid() {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	Propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.base.RoundTrip(r)
}
