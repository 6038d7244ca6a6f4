package proof

import (
	"net"
	"strings"
	"testing"

	"github.com/tickit/tickit/knative/local/backing"
)

func TestTheTracedProfileIsMemoryWithTracingOn(t *testing.T) {
	// Arrange
	var memory, traced Profile
	for _, p := range Profiles(1) {
		switch p.Name {
		case "memory":
			memory = p
		case "traced":
			traced = p
		}
	}

	// Assert: the same store and data set, so each traced.route.* row compares with memory's.
	if traced.Name == "" || !traced.Traced {
		t.Fatalf("Profiles(1) has no traced profile with tracing on: %+v", traced)
	}
	if memory.Traced {
		t.Error("the memory profile traces; want only traced to")
	}
	traced.Name, traced.Traced = memory.Name, memory.Traced
	if traced != memory {
		t.Errorf("traced = %+v; want memory's store and sizes %+v", traced, memory)
	}
}

func TestTraceSettingsAreTheOnesOfTraceMakeRunOnAFreePort(t *testing.T) {
	settings := map[string]string{"MONGO_URL": "memory:"}

	if err := traceSettings(settings); err != nil {
		t.Fatal(err)
	}

	if settings["TRACE"] != "1" {
		t.Errorf("TRACE = %q; want 1, as TRACE=1 make run", settings["TRACE"])
	}
	host, _, err := net.SplitHostPort(settings["JAEGER_UI"])
	if err != nil || host != "127.0.0.1" || settings["JAEGER_UI"] == backing.JaegerUI {
		t.Errorf("JAEGER_UI = %q; want a free loopback port, not make run's %s", settings["JAEGER_UI"], backing.JaegerUI)
	}
	if settings["MONGO_URL"] != "memory:" {
		t.Errorf("MONGO_URL = %q; want the profile's memory: kept", settings["MONGO_URL"])
	}
}

func TestLoadAverageIsThreeNumbers(t *testing.T) {
	if f := strings.Fields(loadAverage()); len(f) != 3 {
		t.Errorf("loadAverage() = %q; want the three load averages of /proc/loadavg", loadAverage())
	}
}
