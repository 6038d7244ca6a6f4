package delivery

import (
	"net/http"
	"strconv"
	"time"
)

// Expected is what the scenarios do according to the code of the real Broker with spec (linear
// or exponential backoff), read rather than run: eventing-natss 03a34594d69c's JetStream
// dispatcher (pkg/channel/jetstream/dispatcher/message_dispatcher.go) behind knative.dev/eventing
// v0.50.0's MT Broker filter (pkg/broker/filter/filter_handler.go). make conformance measures the
// real Broker against it; knative/local's test holds knative/local to it. In short:
//
//   - attempt n (JetStream's NumDelivered, from 1) is the last one when n > spec.Retry; only the
//     last attempt's failure reaches the dead-letter sink, whatever the status;
//   - before it, 5xx, 408 and 429 are negatively acknowledged with the delay delay*2^n
//     (exponential) or delay*n (linear), and every other failure is terminated: the event is
//     dropped, it never reaches the dead-letter sink;
//   - an attempt lasts at most the spec's timeout plus 300 ms (AckWait = timeout + 500 ms, the
//     request deadline AckWait - 200 ms);
//   - the filter answers 502 to a 2xx whose body is not empty and not a CloudEvent: retried;
//   - the dead letter carries knativeerrorcode/dest/data only when the filter itself answered
//     with the subscriber's status (the ErrExtensionInfo body); a timeout between the
//     dispatcher and the filter and the filter's own 502 leave it without them. It always
//     carries the Broker's hop count, knativebrokerttl 255, and the ingress's knativearrivaltime
//     (measured by make conformance).
func Expected(spec Spec) []Result {
	delay, _ := ParseDuration(spec.BackoffDelay)
	timeout, _ := ParseDuration(spec.Timeout)
	attemptTimeout := timeout + 300*time.Millisecond
	nak := func(n int) time.Duration {
		if spec.BackoffPolicy == "linear" {
			return delay * time.Duration(n)
		}
		return delay << n
	}
	last := int(spec.Retry) + 1
	// gaps between attempts 1..k, each attempt lasting took (0 for a prompt answer).
	gaps := func(k int, took time.Duration) []time.Duration {
		var ds []time.Duration
		for n := 1; n < k; n++ {
			ds = append(ds, took+nak(n))
		}
		return ds
	}
	ttl := map[string]string{"knativebrokerttl": "255", "knativearrivaltime": "{time}"}
	withError := func(name string, code int, data string) map[string]string {
		return map[string]string{
			"knativebrokerttl":   "255",
			"knativearrivaltime": "{time}",
			"knativeerrorcode":   strconv.Itoa(code),
			"knativeerrordest":   "{subscriber}/" + name,
			"knativeerrordata":   data,
		}
	}
	acked := func(name string, attempts int, took time.Duration) Result {
		return Result{Scenario: name, Attempts: attempts, Delays: gaps(attempts, took), Outcome: Acked}
	}
	var list []Result
	for _, sc := range scenarios(spec) {
		var r Result
		switch name := sc.name; name {
		case "2xx", "duplicate-id":
			r = acked(name, 1, 0)
		case "2xx-reply":
			r = acked(name, 1, 0)
			r.Replies = 1
		case "2xx-body-not-an-event":
			r = Result{Scenario: name, Attempts: last, Delays: gaps(last, 0), Outcome: DeadLettered, DeadLetters: 1, DeadLetterExtensions: ttl}
		case "503-then-2xx", "500-then-2xx", "408-then-2xx", "429-then-2xx":
			r = acked(name, 2, 0)
		case "timeout-then-2xx":
			r = acked(name, 2, attemptTimeout)
		case "timeout-always":
			r = Result{Scenario: name, Attempts: last, Delays: gaps(last, attemptTimeout), Outcome: DeadLettered, DeadLetters: 1, DeadLetterExtensions: ttl}
		case "503-then-400":
			r = Result{Scenario: name, Attempts: 2, Delays: gaps(2, 0), Outcome: Dropped}
		case "400-on-last-attempt":
			r = Result{Scenario: name, Attempts: last, Delays: gaps(last, 0), Outcome: DeadLettered, DeadLetters: 1,
				DeadLetterExtensions: withError(name, http.StatusBadRequest, errorBody(http.StatusBadRequest))}
		case "retries-exhausted":
			r = Result{Scenario: name, Attempts: last, Delays: gaps(last, 0), Outcome: DeadLettered, DeadLetters: 1,
				DeadLetterExtensions: withError(name, http.StatusServiceUnavailable, errorBody(http.StatusServiceUnavailable))}
		case "500-json-always":
			r = Result{Scenario: name, Attempts: last, Delays: gaps(last, 0), Outcome: DeadLettered, DeadLetters: 1,
				DeadLetterExtensions: withError(name, http.StatusInternalServerError, errorBody(http.StatusInternalServerError))}
		case "refused":
			ext := withError(name, http.StatusInternalServerError,
				`dispatch error: Post "{refused}/refused": dial tcp {refused-host}: connect: connection refused`)
			ext["knativeerrordest"] = "{refused}/refused"
			r = Result{Scenario: name, Outcome: DeadLettered, DeadLetters: 1, DeadLetterExtensions: ext}
			for _, d := range gaps(last, 0) {
				r.Elapsed += d
			}
		default: // a final 4xx on the first of several attempts: terminated
			r = Result{Scenario: name, Attempts: 1, Outcome: Dropped}
			if spec.Retry == 0 {
				r.Outcome, r.DeadLetters = DeadLettered, 1
			}
		}
		list = append(list, r)
	}
	return list
}
