package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tickit/tickit/knative/delivery"
	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/broker"
)

// localNamespace is the namespace of knative/local's Broker in the table: its streams live
// in the run's nats-server beside eventing-natss's, under other names.
const localNamespace = "delivery-local"

// localBroker is knative/local's Broker as knative/delivery's scenarios see it, on the
// run's nats-server. Route collects the Triggers (knative/local reads them from the
// manifests at start); the first event posted starts the Broker with all of them.
type localBroker struct {
	nats     *backing.NATS
	srv      *httptest.Server
	triggers []*eventingv1.Trigger

	once    sync.Once
	b       *broker.Broker
	handler http.Handler
	err     error
}

func newLocalBroker(natsURL string) (*localBroker, error) {
	n, err := backing.ConnectNATS(natsURL)
	if err != nil {
		return nil, err
	}
	l := &localBroker{nats: n}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	return l, nil
}

func (l *localBroker) close() {
	l.srv.Close()
	if l.b != nil {
		l.b.Close()
	}
	l.nats.Close()
}

func (l *localBroker) Route(_ context.Context, name, eventType, subscriber, deadLetterSink string, spec delivery.Spec) error {
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
	l.triggers = append(l.triggers, &eventingv1.Trigger{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: localNamespace},
		Spec: eventingv1.TriggerSpec{Broker: "default", Subscriber: duckv1.Destination{URI: sub}, Delivery: d,
			Filter: &eventingv1.TriggerFilter{Attributes: map[string]string{"type": eventType}}},
	})
	return nil
}

func (l *localBroker) Ingress() string { return l.srv.URL + "/" + localNamespace + "/default" }

func (l *localBroker) serve(w http.ResponseWriter, r *http.Request) {
	l.once.Do(func() {
		l.b, l.err = broker.New(context.Background(), broker.Config{
			Broker:   &eventingv1.Broker{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: localNamespace}},
			Triggers: l.triggers, JS: l.nats.JS,
			Resolve: func(d duckv1.Destination) (*url.URL, error) { return d.URI.URL(), nil },
		})
		if l.err == nil {
			l.handler = broker.Ingress(l.b)
		}
	})
	if l.err != nil {
		http.Error(w, l.err.Error(), http.StatusServiceUnavailable)
		return
	}
	l.handler.ServeHTTP(w, r)
}
