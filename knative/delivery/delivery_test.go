package delivery

import (
	"strings"
	"testing"
	"time"
)

func TestISODurationsOfDeliverySpecsParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT0.5S": 500 * time.Millisecond, "PT0.2S": 200 * time.Millisecond, "PT40S": 40 * time.Second,
		"PT1M": time.Minute, "PT1H30M": 90 * time.Minute, "P1DT1S": 24*time.Hour + time.Second, "": 0,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"2s", "P", "PT", "PTS", "PT1X", "P1S", "PT1.2.3S"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

// The measured case of issue 15: retry 10, exponential, PT0.5S. eventing-natss waits
// delay*2^n after attempt n, so the event is dead-lettered 1+2+...+512 = 1,023 s after the first
// attempt, not 0.5+1+...+256 (kncloudevents' in-process retries, which the Triggers' comments
// assumed).
func TestExpectedBackoffIsEventingNatssNakDelay(t *testing.T) {
	spec := Spec{Retry: 10, BackoffPolicy: "exponential", BackoffDelay: "PT0.5S"}
	for _, r := range Expected(spec) {
		if r.Scenario != "retries-exhausted" {
			continue
		}
		var total time.Duration
		for i, d := range r.Delays {
			if want := time.Second << i; d != want {
				t.Errorf("delay after attempt %d = %v, want %v", i+1, d, want)
			}
			total += d
		}
		if r.Attempts != 11 || total != 1023*time.Second {
			t.Fatalf("%d attempts over %v, want 11 over 1023s", r.Attempts, total)
		}
		return
	}
	t.Fatal("no retries-exhausted scenario")
}

func TestEveryScenarioHasAnExpectation(t *testing.T) {
	names := Scenarios()
	exp := Expected(TableSpec)
	if len(exp) != len(names) {
		t.Fatalf("%d expectations for %d scenarios", len(exp), len(names))
	}
	for i, r := range exp {
		if r.Scenario != names[i] || r.Outcome == "" {
			t.Errorf("expectation %d: %+v for scenario %s", i, r, names[i])
		}
	}
}

func TestTableCountsTheRowsThatDisagree(t *testing.T) {
	ref := []Result{
		{Scenario: "a", Attempts: 4, Delays: []time.Duration{400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}, Outcome: Acked},
		{Scenario: "b", Attempts: 1, Outcome: Dropped},
		{Scenario: "c", Outcome: DeadLettered, DeadLetters: 1, Elapsed: 2800 * time.Millisecond,
			DeadLetterExtensions: map[string]string{"knativeerrorcode": "500"}},
	}
	same := []Result{
		{Scenario: "a", Attempts: 4, Delays: []time.Duration{650 * time.Millisecond, 1000 * time.Millisecond, 1900 * time.Millisecond}, Outcome: Acked}, // late on a busy machine
		{Scenario: "b", Attempts: 1, Outcome: Dropped},
		{Scenario: "c", Outcome: DeadLettered, DeadLetters: 8, Elapsed: 3500 * time.Millisecond, // at least once
			DeadLetterExtensions: map[string]string{"knativeerrorcode": "500"}},
	}
	text, n := Table([]string{"x", "y"}, ref, same)
	if n != 0 {
		t.Fatalf("%d disagreements, want 0:\n%s", n, text)
	}
	if !strings.Contains(text, "dead-lettered 8 times") {
		t.Errorf("the table does not show a dead letter sent 8 times:\n%s", text)
	}
	differ := []Result{
		{Scenario: "a", Attempts: 4, Delays: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}, Outcome: Acked}, // kncloudevents' half delays
		{Scenario: "b", Attempts: 1, Outcome: DeadLettered, DeadLetters: 1},
		{Scenario: "c", Outcome: DeadLettered, DeadLetters: 1, Elapsed: 2800 * time.Millisecond}, // no extensions
		{Scenario: "d", Attempts: 1, Outcome: Acked},                                             // not in the first column
	}
	text, n = Table([]string{"x", "y"}, ref, differ)
	if n != 4 {
		t.Fatalf("%d disagreements, want 4:\n%s", n, text)
	}
	for _, want := range []string{"≠   a", "4 attempts, delays 0.40 0.80 1.60 s, acked", "c, x: errorcode=\"500\"", "4 disagreement(s)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the table lacks %q:\n%s", want, text)
		}
	}
}

// A busy machine makes deliveries late; another backoff formula halves or doubles them.
func TestAgreeToleratesLatenessButNotAnotherBackoffFormula(t *testing.T) {
	var ref Result
	for _, r := range Expected(TableSpec) {
		if r.Scenario == "retries-exhausted" {
			ref = r
		}
	}
	scaled := func(num, den time.Duration, plus time.Duration) Result {
		r := ref
		r.Delays = nil
		for _, d := range ref.Delays {
			r.Delays = append(r.Delays, d*num/den+plus)
		}
		return r
	}
	if !Agree(ref, scaled(1, 1, 200*time.Millisecond)) {
		t.Error("every delay 200 ms late disagrees")
	}
	if Agree(ref, scaled(1, 2, 0)) {
		t.Error("kncloudevents' delays (half of eventing-natss's) agree")
	}
	if Agree(ref, scaled(2, 1, 0)) {
		t.Error("twice the delays agree")
	}
}
