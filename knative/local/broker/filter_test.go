package broker_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"net/url"

	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tickit/tickit/knative/local/broker"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

func TestTriggersFilterWithEveryDialect(t *testing.T) {
	// Three events; each Trigger must get exactly the ones its filter selects.
	events := map[string]string{"1": "dev.tickit.a", "2": "dev.tickit.b", "3": "other.c"}
	cases := []struct {
		name string
		opt  option
		want string // event ids, in order
	}{
		{"none", nil, "1 2 3"},
		{"attributes", attributesFilter(map[string]string{"type": "dev.tickit.a"}), "1"},
		{"attributes-two", attributesFilter(map[string]string{"type": "dev.tickit.b", "source": "/tickit/test"}), "2"},
		{"exact", filters(eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"type": "dev.tickit.a"}}), "1"},
		{"prefix", filters(eventingv1.SubscriptionsAPIFilter{Prefix: map[string]string{"type": "dev.tickit."}}), "1 2"},
		{"suffix", filters(eventingv1.SubscriptionsAPIFilter{Suffix: map[string]string{"type": ".c"}}), "3"},
		{"all", filters(eventingv1.SubscriptionsAPIFilter{All: []eventingv1.SubscriptionsAPIFilter{
			{Prefix: map[string]string{"type": "dev."}}, {Exact: map[string]string{"subject": "s-2"}}}}), "2"},
		{"any", filters(eventingv1.SubscriptionsAPIFilter{Any: []eventingv1.SubscriptionsAPIFilter{
			{Exact: map[string]string{"type": "dev.tickit.b"}}, {Exact: map[string]string{"type": "other.c"}}}}), "2 3"},
		{"not", filters(eventingv1.SubscriptionsAPIFilter{Not: &eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"type": "dev.tickit.a"}}}), "2 3"},
		{"cesql", filters(eventingv1.SubscriptionsAPIFilter{CESQL: "type = 'other.c' OR subject = 's-1'"}), "1 3"},
		{"filters-are-anded", filters(
			eventingv1.SubscriptionsAPIFilter{Prefix: map[string]string{"type": "dev."}},
			eventingv1.SubscriptionsAPIFilter{Suffix: map[string]string{"type": ".a"}}), "1"},
	}
	var triggers []*eventingv1.Trigger
	subs := map[string]*subscriber{}
	for _, c := range cases {
		sub := newSubscriber(t, ok)
		subs[c.name] = sub
		var opts []option
		if c.opt != nil {
			opts = append(opts, c.opt)
		}
		triggers = append(triggers, trigger(c.name, sub.URL, opts...))
	}
	n := startNATS(t, t.TempDir())
	w := start(t, n, 1, triggers...)

	for _, id := range []string{"1", "2", "3"} {
		mustSend(t, w.ingress, event(id, events[id]))
	}

	eventually(t, "every trigger settled every event", func() bool { return settled(t, n.JS, len(cases)) })
	for _, c := range cases {
		var got []string
		for _, e := range subs[c.name].Received() {
			got = append(got, e.ID())
		}
		slices.Sort(got)
		if strings.Join(got, " ") != c.want {
			t.Errorf("trigger %s got %v, want %s", c.name, got, c.want)
		}
	}
}

// settled reports whether all the Broker's consumers have nothing pending or unacknowledged.
func settled(t *testing.T, js jetstream.JetStream, consumers int) bool {
	t.Helper()
	ctx := context.Background()
	stream, err := js.Stream(ctx, "BROKER_tickit_default")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for c := range stream.ListConsumers(ctx).Info() {
		seen++
		if c.NumPending > 0 || c.NumAckPending > 0 || c.Delivered.Stream < 3 {
			return false
		}
	}
	if seen != consumers {
		t.Fatalf("%d consumers, want %d", seen, consumers)
	}
	return true
}

func TestATriggerWithAnInvalidFilterStopsTheBroker(t *testing.T) {
	for _, expr := range []string{"type = = 'x'", "(type = 'x'"} {
		bad := trigger("bad", "http://127.0.0.1:1", filters(eventingv1.SubscriptionsAPIFilter{CESQL: expr}))
		_, err := broker.New(context.Background(), broker.Config{
			Broker:   &eventingv1.Broker{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}},
			Triggers: []*eventingv1.Trigger{bad},
			JS:       startNATS(t, t.TempDir()).JS,
			Resolve:  func(d duckv1.Destination) (*url.URL, error) { return d.URI.URL(), nil },
		})
		if err == nil || !strings.Contains(err.Error(), "trigger bad: filter") {
			t.Errorf("CESQL %q: New = %v, want an error naming the trigger's filter", expr, err)
		}
	}
}
