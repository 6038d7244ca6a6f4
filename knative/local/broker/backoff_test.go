package broker

import (
	"testing"
	"time"

	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
)

func TestBackoffFollowsTheDeliverySpecFormulas(t *testing.T) {
	linear, exponential := eventingduckv1.BackoffPolicyLinear, eventingduckv1.BackoffPolicyExponential
	cases := []struct {
		name   string
		policy *eventingduckv1.BackoffPolicyType
		want   []time.Duration // retries 1, 2, 3
	}{
		{"linear", &linear, []time.Duration{100, 200, 300}},
		{"exponential", &exponential, []time.Duration{200, 400, 800}},
		{"unset is exponential", nil, []time.Duration{200, 400, 800}},
	}
	for _, c := range cases {
		f := backoff(c.policy, 100*time.Millisecond)
		for i, want := range c.want {
			if got := f(i + 1); got != want*time.Millisecond {
				t.Errorf("%s: retry %d waits %v, want %v", c.name, i+1, got, want*time.Millisecond)
			}
		}
	}
}

func TestISODurationsOfDeliverySpecsParse(t *testing.T) {
	for in, want := range map[string]time.Duration{"PT0.5S": 500 * time.Millisecond, "PT2S": 2 * time.Second, "PT1M": time.Minute} {
		if got, err := isoDuration(in); err != nil || got != want {
			t.Errorf("isoDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := isoDuration("2s"); err == nil {
		t.Error(`isoDuration("2s") accepted a Go duration`)
	}
}
