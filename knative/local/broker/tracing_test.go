package broker_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
)

func TestTheBrokerRecordsIngressAttemptsAndRepliesInTheEventsTrace(t *testing.T) {
	// Arrange: spans recorded in memory; a subscriber that fails once, then replies.
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	const trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	sub := newSubscriber(t, func(e cloudevents.Event, n int) (int, *cloudevents.Event) {
		if n == 1 {
			return http.StatusServiceUnavailable, nil
		}
		r := event("reply-to-"+e.ID(), "dev.tickit.reply")
		return http.StatusOK, &r
	})
	w := start(t, startNATS(t, t.TempDir()), 0, trigger("t", sub.URL, delivery(2, eventingduckv1.BackoffPolicyLinear, "PT0.01S", ""),
		attributesFilter(map[string]string{"type": "dev.tickit.test"})))
	e := event("traced", "dev.tickit.test")
	e.SetExtension("traceparent", "00-"+trace+"-"+parent+"-01")

	// Act
	mustSend(t, w.ingress, e)
	eventually(t, "the second attempt answered and its reply stored", func() bool {
		for _, s := range spans.GetSpans() {
			if strings.HasPrefix(s.Name, "reply ") {
				return true
			}
		}
		return false
	})

	// Assert: every span is in the event's trace; ingress and attempts under the event's span,
	// the reply under the attempt that brought it; each attempt's span went on to the subscriber.
	var got []string
	attempts := map[string]bool{}
	for _, s := range spans.GetSpans() {
		if s.SpanContext.TraceID().String() != trace {
			t.Errorf("span %q in trace %s, want %s", s.Name, s.SpanContext.TraceID(), trace)
		}
		code := ""
		for _, kv := range s.Attributes {
			if kv.Key == "http.response.status_code" {
				code = kv.Value.String()
			}
		}
		got = append(got, fmt.Sprintf("%s %s", s.Name, code))
		if s.Name == "deliver t" {
			attempts[s.SpanContext.SpanID().String()] = true
		}
		if (s.Name == "deliver t" || s.Name == "ingress dev.tickit.test") && s.Parent.SpanID().String() != parent {
			t.Errorf("span %q under %s, want under the event's span %s", s.Name, s.Parent.SpanID(), parent)
		}
		if s.Name == "reply dev.tickit.reply" && !attempts[s.Parent.SpanID().String()] {
			t.Errorf("the reply span is not under an attempt span")
		}
	}
	sort.Strings(got)
	if want := "deliver t 200,deliver t 503,ingress dev.tickit.test 202,reply dev.tickit.reply "; strings.Join(got, ",") != want {
		t.Fatalf("spans %q, want %q", strings.Join(got, ","), want)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for i, h := range sub.headers {
		tp := strings.Split(h.Get("traceparent"), "-")
		if len(tp) != 4 || tp[1] != trace || !attempts[tp[2]] {
			t.Errorf("delivery %d carried traceparent %q, want one of an attempt span in trace %s", i+1, h.Get("traceparent"), trace)
		}
	}
}
