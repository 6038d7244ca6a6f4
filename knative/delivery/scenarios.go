package delivery

import (
	"fmt"
	"net/http"
)

// answer is what the subscriber does on one attempt.
type answer struct {
	code  int
	body  string // written with Content-Type application/json when not empty
	slow  bool   // answer only after the delivery spec's timeout has passed (1 s later)
	reply bool   // answer with a reply CloudEvent of type ReplyType
}

// scenario is one row of the table.
type scenario struct {
	name    string
	answer  func(attempt int) answer // attempt: 1, 2, ...; nil: nobody listens (refused)
	posts   int                      // how many times the event is posted (the same id)
	replies bool                     // the scenario's reply events are routed back and counted
}

// ReplyType is the type of the reply event of the "2xx-reply" scenario.
const ReplyType = "dev.tickit.delivery.reply"

// errorBody is a JSON error body in tickit's API format.
func errorBody(code int) string {
	return fmt.Sprintf(`{"errors":[{"message":"answer %d"}]}`, code)
}

func always(a answer) func(int) answer { return func(int) answer { return a } }

// first answers a on the first attempt, then b.
func first(a, b answer) func(int) answer {
	return func(n int) answer {
		if n == 1 {
			return a
		}
		return b
	}
}

// scenarios is the list of issue 15 item 3, plus two rows that show when a final 4xx reaches the
// dead-letter sink (after a retryable answer, and on the last attempt) and two that show what
// becomes of a 2xx body that is not a CloudEvent and of an attempt that always times out, and
// tickit's own answer to an event it can never take (500 with a JSON error body).
func scenarios(spec Spec) []scenario {
	accepted := answer{code: http.StatusAccepted}
	list := []scenario{
		{name: "2xx", answer: always(accepted)},
		{name: "2xx-reply", answer: always(answer{code: http.StatusOK, reply: true}), replies: true},
		{name: "2xx-body-not-an-event", answer: always(answer{code: http.StatusOK, body: `{"ok":true}`})},
		{name: "503-then-2xx", answer: first(answer{code: 503}, accepted)},
		{name: "500-then-2xx", answer: first(answer{code: 500}, accepted)},
		{name: "408-then-2xx", answer: first(answer{code: 408}, accepted)},
		{name: "429-then-2xx", answer: first(answer{code: 429}, accepted)},
	}
	for _, code := range []int{400, 404, 409, 422} {
		list = append(list,
			scenario{name: fmt.Sprintf("%d-empty", code), answer: always(answer{code: code})},
			scenario{name: fmt.Sprintf("%d-json", code), answer: always(answer{code: code, body: errorBody(code)})})
	}
	last := int(spec.Retry) + 1
	list = append(list,
		scenario{name: "503-then-400", answer: first(answer{code: 503}, answer{code: 400, body: errorBody(400)})},
		scenario{name: "400-on-last-attempt", answer: func(n int) answer {
			if n < last {
				return answer{code: 503}
			}
			return answer{code: 400, body: errorBody(400)}
		}},
		scenario{name: "timeout-then-2xx", answer: first(answer{code: http.StatusAccepted, slow: true}, accepted)},
		scenario{name: "timeout-always", answer: always(answer{code: http.StatusAccepted, slow: true})},
		scenario{name: "refused"},
		scenario{name: "duplicate-id", answer: always(accepted), posts: 2},
		scenario{name: "retries-exhausted", answer: always(answer{code: 503, body: errorBody(503)})},
		// What a tickit function answers to an event it can never take (functions/internal/runtime).
		scenario{name: "500-json-always", answer: always(answer{code: 500, body: errorBody(500)})},
	)
	return list
}

// Scenarios names the scenarios in the order Run reports them.
func Scenarios() []string {
	var names []string
	for _, s := range scenarios(TableSpec) {
		names = append(names, s.name)
	}
	return names
}
