package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	scenarios "github.com/tickit/tickit/knative/delivery"
	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/broker"
)

// The knative/local column of the differential table (issue 15): every delivery scenario through
// knative/local's Broker must do what the real Broker's code does (delivery.Expected, which
// make conformance measures against the real MT Broker over NatsJetStreamChannel). The table is
// in the test's log (go test -v).
func TestDeliveryScenariosDoWhatTheRealBrokerDoes(t *testing.T) {
	lb := &localBroker{t: t, nats: startNATS(t, t.TempDir())}
	srv := httptest.NewServer(http.HandlerFunc(lb.serve))
	t.Cleanup(srv.Close)
	lb.ingress = srv.URL + "/" + ns + "/default"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := scenarios.Run(ctx, lb)
	text, disagreements := scenarios.Table([]string{"expected (eventing-natss code)", "knative/local"},
		scenarios.Expected(scenarios.TableSpec), results)
	t.Log("delivery scenarios, spec retry 3, exponential, PT0.2S, timeout PT1S:\n" + text)
	if err != nil {
		t.Fatal(err)
	}
	if disagreements > 0 {
		t.Errorf("knative/local disagrees with the real Broker's code in %d scenario(s):\n%s", disagreements, text)
	}
}

// localBroker is knative/local's Broker as delivery.Run sees it. Route collects the Triggers;
// the first event posted to the ingress starts the Broker with all of them.
type localBroker struct {
	t        *testing.T
	nats     *backing.NATS
	ingress  string
	triggers []*eventingv1.Trigger

	once    sync.Once
	handler http.Handler
	err     error
}

func (l *localBroker) Route(_ context.Context, name, eventType, subscriber, deadLetterSink string, spec scenarios.Spec) error {
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
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: eventingv1.TriggerSpec{Broker: "default", Subscriber: duckv1.Destination{URI: sub}, Delivery: d,
			Filter: &eventingv1.TriggerFilter{Attributes: map[string]string{"type": eventType}}},
	})
	return nil
}

func (l *localBroker) Ingress() string { return l.ingress }

func (l *localBroker) serve(w http.ResponseWriter, r *http.Request) {
	l.once.Do(func() {
		b, err := broker.New(context.Background(), broker.Config{
			Broker:   &eventingv1.Broker{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}},
			Triggers: l.triggers, JS: l.nats.JS,
			Resolve: func(d duckv1.Destination) (*url.URL, error) { return d.URI.URL(), nil },
		})
		if err != nil {
			l.err = err
			return
		}
		l.t.Cleanup(b.Close)
		l.handler = broker.Ingress(b)
	})
	if l.err != nil {
		http.Error(w, l.err.Error(), http.StatusServiceUnavailable)
		return
	}
	l.handler.ServeHTTP(w, r)
}
