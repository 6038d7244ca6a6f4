package proof

// traced.go: the traced profile, what tracing on costs. The memory profile's store and data
// set, run as TRACE=1 make run runs: Jaeger started (backing.StartJaeger, through the system's
// own tracing start) and every function and the Broker exporting every span to it, so each
// traced.route.<route>.cpu row sits beside memory.route.<route>.cpu.

import (
	"fmt"
	"os"
	"strings"

	"github.com/tickit/tickit/knative/local/backing"
)

// tracedProfile is memory with tracing on. Its data set is memory's, not a smaller one: on
// lungo the CPU of a request grows with the data (create ticket costs 2.6 ms over 220 tickets
// on the file store, 6.7 ms over 10,000 in memory), so a smaller set would hide what tracing
// adds.
func tracedProfile(memory Profile) Profile {
	p := memory
	p.Name, p.Traced = "traced", true
	return p
}

// traceSettings are what TRACE=1 make run sets: Jaeger on a free loopback port (not
// 127.0.0.1:16686, which a make run may hold), OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_BSP_SCHEDULE_DELAY=200 for every function, the Broker's spans to the same Jaeger.
func traceSettings(settings map[string]string) error {
	port, err := backing.FreePort()
	if err != nil {
		return err
	}
	settings["TRACE"] = "1"
	settings["JAEGER_UI"] = fmt.Sprintf("127.0.0.1:%d", port)
	return nil
}

// tracedStarts says where the spans go and measures every function's cold start and idle
// RSS with tracing on (the SDK installed, an exporter to Jaeger), as traced.coldstart.* and
// traced.rss.* beside the coldstart.* and rss.* rows of the first profile.
func tracedStarts(w *World, t *Table) error {
	if w.Jaeger() == "" {
		return fmt.Errorf("tracing on, but no Jaeger started")
	}
	t.Note("traced: tracing on: every function and the Broker export every span to Jaeger at %s (OTLP/HTTP JSON, OTEL_BSP_SCHEDULE_DELAY=200), as TRACE=1 make run does; load average %s",
		w.Jaeger(), loadAverage())
	t.Note("traced: cold start and idle RSS with tracing on, measured as coldstart.* and rss.* are")
	return coldStarts(w, t, "traced.")
}

// loadAverage is the first three fields of /proc/loadavg: what else this machine was doing.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
