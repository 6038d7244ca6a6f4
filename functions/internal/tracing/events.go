package tracing

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/extensions"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// StartEvent joins the trace a received CloudEvent belongs to and starts its server span,
// "process <type>". The parent is the request's traceparent header (the hop that delivered
// it: Knative's Broker sets it) or else the event's distributed-tracing extension (the context
// the event was created in: structured mode carries it in the body, binary mode in
// ce-traceparent). When both are there and differ, the span links to the event's context.
// end records the answer's HTTP status (5xx and 400 mark the span as an error) and ends it.
func StartEvent(ctx context.Context, h http.Header, e *cloudevents.Event) (_ context.Context, end func(status int)) {
	if h.Get("traceparent") != "" {
		ctx = Propagator.Extract(ctx, propagation.HeaderCarrier(h))
	}
	var opts []trace.SpanStartOption
	if fromEvent := eventContext(ctx, e); !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = fromEvent
	} else if sc := trace.SpanContextFromContext(fromEvent); sc.IsValid() && sc.TraceID() != trace.SpanContextFromContext(ctx).TraceID() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := Tracer().Start(ctx, "process "+e.Type(), append(opts, trace.WithSpanKind(trace.SpanKindServer))...)
	if span.IsRecording() {
		span.SetAttributes(EventAttributes(e, "process")...)
	}
	return ctx, func(status int) {
		if span.IsRecording() {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 || status == http.StatusBadRequest {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
		}
		span.End()
	}
}

// eventContext is ctx with the remote span context of e's distributed-tracing extension, or
// ctx itself when e has none.
func eventContext(ctx context.Context, e *cloudevents.Event) context.Context {
	dt, ok := extensions.GetDistributedTracingExtension(*e)
	if !ok || dt.TraceParent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": dt.TraceParent, "tracestate": dt.TraceState})
}

// Stamp records ctx's trace context in e's distributed-tracing extension (traceparent,
// tracestate), unless e already carries one: the context an event was created in travels with
// it, through an outbox and the Broker, to every function that receives it.
func Stamp(ctx context.Context, e *cloudevents.Event) {
	if _, ok := e.Extensions()[extensions.TraceParentExtension]; ok || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	extensions.DistributedTracingExtension{TraceParent: carrier["traceparent"], TraceState: carrier["tracestate"]}.AddTracingAttributes(e)
}

// StartPublish starts the producer span "publish <type>" for sending e. Its parent is the
// context e was created in (its extension), so that an event sent later by an outbox flush
// still belongs to the request that caused it; the span links to ctx's span when that is
// another trace. e is stamped with ctx first when it carries no context yet.
func StartPublish(ctx context.Context, e *cloudevents.Event) (context.Context, trace.Span) {
	Stamp(ctx, e)
	var opts []trace.SpanStartOption
	parent := eventContext(ctx, e)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.TraceID() != trace.SpanContextFromContext(parent).TraceID() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := Tracer().Start(parent, "publish "+e.Type(), append(opts, trace.WithSpanKind(trace.SpanKindProducer))...)
	if span.IsRecording() {
		span.SetAttributes(EventAttributes(e, "publish")...)
	}
	return ctx, span
}

// EventAttributes are the attributes of a span about e: those cloudevents sdk-go's OpenTelemetry
// module gives (cloudevents.id, .type, .source, .subject, .specversion; the module is not linked:
// it pulls a second set of semconv packages) and the ids of the entities its data names, as tickit.order.id,
// tickit.ticket.id and tickit.payment.id. The "id" field of dev.tickit.<entity>.<verb> is that
// entity's.
func EventAttributes(e *cloudevents.Event, method string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("cloudevents.id", e.ID()), attribute.String("cloudevents.type", e.Type()),
		attribute.String("cloudevents.source", e.Source()), attribute.String("cloudevents.specversion", e.SpecVersion()),
		attribute.String("code.function", method),
	}
	if e.Subject() != "" {
		attrs = append(attrs, attribute.String("cloudevents.subject", e.Subject()))
	}
	var d struct {
		ID        string `json:"id"`
		OrderID   string `json:"orderId"`
		TicketID  string `json:"ticketId"`
		PaymentID string `json:"paymentId"`
		Ticket    struct {
			ID string `json:"id"`
		} `json:"ticket"`
	}
	if json.Unmarshal(e.Data(), &d) != nil {
		return attrs
	}
	if d.TicketID == "" {
		d.TicketID = d.Ticket.ID
	}
	ids := map[string]string{"order": d.OrderID, "ticket": d.TicketID, "payment": d.PaymentID}
	if entity := typeEntity(e.Type()); entity != "" && d.ID != "" {
		ids[entity] = d.ID
	}
	for _, entity := range []string{"order", "ticket", "payment"} {
		if ids[entity] != "" {
			attrs = append(attrs, attribute.String("tickit."+entity+".id", ids[entity]))
		}
	}
	return attrs
}

// typeEntity is the entity of a tickit event type: "order" for dev.tickit.order.created.
func typeEntity(typ string) string {
	rest, ok := strings.CutPrefix(typ, "dev.tickit.")
	if !ok {
		return ""
	}
	entity, _, _ := strings.Cut(rest, ".")
	return entity
}

// End ends span, marking it as an error when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
