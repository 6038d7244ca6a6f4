// This file holds knative/local's Broker as the differential table (knative/delivery) drives it.
package broker

import (
	"context"
	"net/http"
	"net/url"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tickit/tickit/knative/delivery"
)

// TableBroker is a delivery.Broker: Route collects the Triggers (knative/local reads its
// Triggers from the manifests at start, so it cannot add one later) and the first event
// posted to ServeHTTP starts the Broker "default" in Namespace with all of them. Serve it
// at IngressURL, which must end in /<Namespace>/default. make test and make conformance
// both run the table through it.
type TableBroker struct {
	JS         jetstream.JetStream
	Namespace  string
	IngressURL string

	triggers []*eventingv1.Trigger
	once     sync.Once
	b        *Broker
	handler  http.Handler
	err      error
}

// Route adds the Trigger name for events of eventType with the delivery spec. A Trigger
// routed after the first event is not used: the scenarios route everything first.
func (t *TableBroker) Route(_ context.Context, name, eventType, subscriber, deadLetterSink string, spec delivery.Spec) error {
	sub, err := apis.ParseURL(subscriber)
	if err != nil {
		return err
	}
	dls, err := apis.ParseURL(deadLetterSink)
	if err != nil {
		return err
	}
	policy := eventingduckv1.BackoffPolicyType(spec.BackoffPolicy)
	d := &eventingduckv1.DeliverySpec{Retry: &spec.Retry, BackoffPolicy: &policy, BackoffDelay: &spec.BackoffDelay,
		DeadLetterSink: &duckv1.Destination{URI: dls}}
	if spec.Timeout != "" {
		d.Timeout = &spec.Timeout
	}
	t.triggers = append(t.triggers, &eventingv1.Trigger{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.Namespace},
		Spec: eventingv1.TriggerSpec{Broker: "default", Subscriber: duckv1.Destination{URI: sub}, Delivery: d,
			Filter: &eventingv1.TriggerFilter{Attributes: map[string]string{"type": eventType}}},
	})
	return nil
}

// Ingress is where the scenarios post their events.
func (t *TableBroker) Ingress() string { return t.IngressURL }

// ServeHTTP is the Broker's ingress; the first request starts the Broker.
func (t *TableBroker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.once.Do(func() {
		t.b, t.err = New(context.Background(), Config{
			Broker:   &eventingv1.Broker{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: t.Namespace}},
			Triggers: t.triggers, JS: t.JS,
			Resolve: func(d duckv1.Destination) (*url.URL, error) { return d.URI.URL(), nil },
		})
		if t.err == nil {
			t.handler = Ingress(t.b)
		}
	})
	if t.err != nil {
		http.Error(w, t.err.Error(), http.StatusServiceUnavailable)
		return
	}
	t.handler.ServeHTTP(w, r)
}

// Close stops the Broker if it started.
func (t *TableBroker) Close() {
	if t.b != nil {
		t.b.Close()
	}
}
