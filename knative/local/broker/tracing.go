package broker

import (
	"context"
	"net/http"
	"strconv"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/extensions"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The Broker's spans, as Knative's Broker records them when tracing is configured: one per
// ingress, per delivery attempt and per reply, each in the trace of the event it carries (the
// event's distributed-tracing extension, W3C traceparent/tracestate). With no tracer provider
// installed (the default) they cost a no-op call.

var traceContext = propagation.TraceContext{}

func tracer() trace.Tracer { return otel.Tracer("github.com/tickit/tickit/knative/local/broker") }

// eventTrace is ctx in the trace e was created in, when e names one.
func eventTrace(ctx context.Context, e cloudevents.Event) context.Context {
	dt, ok := extensions.GetDistributedTracingExtension(e)
	if !ok || dt.TraceParent == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": dt.TraceParent, "tracestate": dt.TraceState})
}

// traceIngress starts the span of an event posted to the ingress, under the request's
// traceparent header or else the event's own context, and stamps the event with the span's
// context when it carries none, so that its deliveries join this trace. end records the status.
func (b *Broker) traceIngress(r *http.Request, e *cloudevents.Event) (context.Context, func(status int)) {
	ctx := r.Context()
	if r.Header.Get("traceparent") != "" {
		ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
	} else {
		ctx = eventTrace(ctx, *e)
	}
	ctx, span := tracer().Start(ctx, "ingress "+e.Type(), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(b.eventAttributes(*e)...))
	stamp(ctx, e)
	return ctx, func(status int) { endWithStatus(span, status, nil) }
}

// traceAttempt starts the span of one delivery attempt to a Trigger's subscriber, in the
// event's trace; the request send makes carries it on (injectTrace). end records the answer.
func (b *Broker) traceAttempt(ctx context.Context, trigger string, e cloudevents.Event, attempt int) (context.Context, func(status int, err error)) {
	ctx, span := tracer().Start(eventTrace(ctx, e), "deliver "+trigger, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(b.eventAttributes(e), attribute.String("knative.trigger", trigger),
			attribute.Int("knative.delivery.attempt", attempt))...))
	return ctx, func(status int, err error) { endWithStatus(span, status, err) }
}

// traceReply records a reply event going back into the Broker, under the attempt that brought
// it, and stamps the reply with that context when it carries none (Knative's filter posts the
// reply to the ingress with the attempt's traceparent header).
func (b *Broker) traceReply(ctx context.Context, trigger string, r *cloudevents.Event) {
	ctx, span := tracer().Start(ctx, "reply "+r.Type(), trace.WithAttributes(append(b.eventAttributes(*r),
		attribute.String("knative.trigger", trigger))...))
	stamp(ctx, r)
	span.End()
}

// stamp sets e's distributed-tracing extension to ctx's span context, unless e has one.
func stamp(ctx context.Context, e *cloudevents.Event) {
	if _, ok := extensions.GetDistributedTracingExtension(*e); ok || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	extensions.DistributedTracingExtension{TraceParent: carrier["traceparent"], TraceState: carrier["tracestate"]}.AddTracingAttributes(e)
}

// injectTrace sets the traceparent header of a delivery from ctx, as Knative's dispatcher does.
func injectTrace(ctx context.Context, req *http.Request) {
	traceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
}

func (b *Broker) eventAttributes(e cloudevents.Event) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("knative.broker", b.ns+"/"+b.name),
		attribute.String("cloudevents.id", e.ID()), attribute.String("cloudevents.type", e.Type()),
		attribute.String("cloudevents.subject", e.Subject()), attribute.String("cloudevents.source", e.Source()),
	}
}

func endWithStatus(span trace.Span, status int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status/100 != 2 {
			msg := strconv.Itoa(status)
			if err != nil {
				msg += ": " + err.Error()
			}
			span.SetStatus(codes.Error, msg)
		}
	}
	span.End()
}
