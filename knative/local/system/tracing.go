package system

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/proc"
)

// BrokerService is the service name of the local Broker's spans.
const BrokerService = "broker"

// startTracing plays Knative's tracing config: with TRACE set it starts Jaeger (its UI and
// query API on JAEGER_UI, default 127.0.0.1:16686; the UI from JAEGER_UI_ASSETS, a folder of
// jaeger-ui's build, else a placeholder page) and points every function and the Broker at it;
// with OTEL_EXPORTER_OTLP_ENDPOINT set, at that collector instead. Otherwise nothing is traced
// and functions get no OTEL_* settings.
func (s *System) startTracing() error {
	env := s.cfg.Getenv
	endpoint := env("OTEL_EXPORTER_OTLP_ENDPOINT")
	if endpoint == "" && env("TRACE") != "" && env("TRACE") != "0" {
		j, err := backing.StartJaeger(s.cfg.Root, env("JAEGER_UI"), env("JAEGER_UI_ASSETS"), proc.Prefix(s.cfg.FunctionOutput, "[jaeger] "))
		if err != nil {
			return err
		}
		s.closers = append(s.closers, j.Close)
		s.jaeger, endpoint = j.UI, j.OTLP
		if env("JAEGER_UI_ASSETS") != "" {
			s.line("trace", "Jaeger UI %s/search, query API %s/api/traces (make trace ORDER=<order id> prints a purchase), OTLP %s", j.UI, j.UI, j.OTLP)
		} else {
			s.line("trace", "Jaeger query API %s/api/traces (make trace ORDER=<order id> prints a purchase; JAEGER_UI_ASSETS adds the UI), OTLP %s", j.UI, j.OTLP)
		}
	}
	if endpoint == "" {
		return nil
	}
	// Spans go out within 200 ms rather than the SDK's 5 s, so a trace shows as it happens.
	delay := env("OTEL_BSP_SCHEDULE_DELAY")
	if delay == "" {
		delay = "200"
	}
	s.traceEnv = []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_BSP_SCHEDULE_DELAY=" + delay}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_RESOURCE_ATTRIBUTES"} {
		if env(v) != "" {
			s.traceEnv = append(s.traceEnv, v+"="+env(v))
		}
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
	if err != nil {
		return err
	}
	res := resource.NewSchemaless(attribute.String("service.name", BrokerService))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(200*time.Millisecond)), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	})
	return nil
}

// Jaeger is the URL of the trace viewer make run started (TRACE=1), or "".
func (s *System) Jaeger() string { return s.jaeger }
