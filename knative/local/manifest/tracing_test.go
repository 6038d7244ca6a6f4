package manifest

import (
	"net/url"
	"testing"

	eventingobs "knative.dev/eventing/pkg/observability"
	servingobs "knative.dev/serving/pkg/observability"
)

// Knative's own tracing config (config-observability, read by knative.dev/pkg/observability)
// sends the spans of Serving and Eventing to the Jaeger of config/ (README: Follow a purchase).
func TestKnativeTracingGoesToJaeger(t *testing.T) {
	p := loadPlatform(t)
	serving, err := servingobs.NewFromMap(p.configMap(t, "knative-serving", "config-observability").Data)
	if err != nil {
		t.Fatalf("Serving's config-observability: %v", err)
	}
	eventing, err := eventingobs.NewFromMap(p.configMap(t, "knative-eventing", "config-observability").Data)
	if err != nil {
		t.Fatalf("Eventing's config-observability: %v", err)
	}
	for name, c := range map[string]struct {
		protocol, endpoint string
		rate               float64
	}{
		"serving":  {serving.Tracing.Protocol, serving.Tracing.Endpoint, serving.Tracing.SamplingRate},
		"eventing": {eventing.Tracing.Protocol, eventing.Tracing.Endpoint, eventing.Tracing.SamplingRate},
	} {
		u, err := url.Parse(c.endpoint)
		if c.protocol != "http/protobuf" || err != nil || c.rate != 1 {
			t.Errorf("%s: tracing %s to %q at rate %v, want http/protobuf, every request", name, c.protocol, c.endpoint, c.rate)
			continue
		}
		if !p.serviceAt(t, u.Host) || u.Path != "/v1/traces" {
			t.Errorf("%s: tracing endpoint %s is not an OTLP/HTTP port of a Service in config/", name, c.endpoint)
		}
	}
}
