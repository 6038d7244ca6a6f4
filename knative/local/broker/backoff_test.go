package broker

import (
	"net/url"
	"testing"
	"time"

	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// The waits between attempts are eventing-natss's NAK delays: after attempt n, delay*2^n
// (exponential) or delay*n (linear). With tickit's spec (retry 10, exponential, PT0.5S) that is
// 1, 2, ..., 512 s: the last attempt comes 1,023 s after the first.
func TestBackoffIsTheNATSChannelsNakDelay(t *testing.T) {
	linear, exponential := eventingduckv1.BackoffPolicyLinear, eventingduckv1.BackoffPolicyExponential
	cases := []struct {
		name   string
		policy *eventingduckv1.BackoffPolicyType
		delay  string
		want   []time.Duration // after attempts 1, 2, 3
	}{
		{"linear", &linear, "PT0.1S", []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}},
		{"exponential", &exponential, "PT0.1S", []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}},
		{"tickit", &exponential, "PT0.5S", []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
	}
	for _, c := range cases {
		tr := newTestTrigger(t, &eventingduckv1.DeliverySpec{Retry: ptr(int32(10)), BackoffPolicy: c.policy, BackoffDelay: &c.delay, Timeout: ptr("PT40S")})
		for i, want := range c.want {
			if got := tr.backoff(i + 1); got != want {
				t.Errorf("%s: after attempt %d waits %v, want %v", c.name, i+1, got, want)
			}
		}
		if c.name == "tickit" {
			var total time.Duration
			for n := 1; n <= tr.retry; n++ {
				total += tr.backoff(n)
			}
			if tr.retry != 10 || total != 1023*time.Second {
				t.Errorf("tickit: %d retries over %v, want 10 over 1023s", tr.retry, total)
			}
			if tr.timeout != 40*time.Second+attemptMargin {
				t.Errorf("tickit: an attempt lasts %v, want 40.3s (eventing-natss: AckWait - 200 ms)", tr.timeout)
			}
		}
	}
}

func TestABadDeliverySpecStopsTheBroker(t *testing.T) {
	for _, d := range []*eventingduckv1.DeliverySpec{{Timeout: ptr("2s")}, {BackoffPolicy: ptr(eventingduckv1.BackoffPolicyLinear), BackoffDelay: ptr("soon")}} {
		tr := &eventingv1.Trigger{Spec: eventingv1.TriggerSpec{Broker: "default", Delivery: d,
			Subscriber: duckv1.Destination{URI: apis.HTTP("subscriber")}}}
		if _, err := newTrigger(tr, nil, resolveURI); err == nil {
			t.Errorf("delivery %+v accepted", d)
		}
	}
}

func newTestTrigger(t *testing.T, d *eventingduckv1.DeliverySpec) *trigger {
	t.Helper()
	tr, err := newTrigger(&eventingv1.Trigger{Spec: eventingv1.TriggerSpec{Broker: "default", Delivery: d,
		Subscriber: duckv1.Destination{URI: apis.HTTP("subscriber")}}}, nil, resolveURI)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func resolveURI(d duckv1.Destination) (*url.URL, error) { return d.URI.URL(), nil }

func ptr[T any](v T) *T { return &v }
