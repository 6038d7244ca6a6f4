package broker_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	scenarios "github.com/tickit/tickit/knative/delivery"
	"github.com/tickit/tickit/knative/local/broker"
)

// The knative/local column of the differential table (issue 15): every delivery scenario through
// knative/local's Broker must do what the real Broker's code does (delivery.Expected, which
// make conformance measures against the real MT Broker over NatsJetStreamChannel). The table is
// in the test's log (go test -v).
func TestDeliveryScenariosDoWhatTheRealBrokerDoes(t *testing.T) {
	lb := &broker.TableBroker{JS: startNATS(t, t.TempDir()).JS, Namespace: ns}
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)
	t.Cleanup(lb.Close)
	lb.IngressURL = srv.URL + "/" + ns + "/default"

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
