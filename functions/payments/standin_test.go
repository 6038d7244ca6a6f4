// standin_test.go: a small Stripe stand-in for what stripe-mock cannot show: declines,
// requires_action, Stripe's amount limits, a network failure, idempotency keys replayed the way
// Stripe does, and the PaymentIntent's states through authorization, capture and cancel
// (stripe-mock is stateless: every PaymentIntent comes back in its fixture's status).
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Test PaymentMethods with Stripe's own names; any other pm_ id charges successfully.
const (
	pmVisa             = "pm_card_visa"
	pmMastercard       = "pm_card_mastercard"
	pmDeclined         = "pm_card_chargeDeclined"
	pmInsufficientFund = "pm_card_visa_chargeDeclinedInsufficientFunds"
	pmAuthRequired     = "pm_card_authenticationRequired"
	pmMissing          = "pm_does_not_exist"
)

// standIn answers /v1/payment_intents (create, capture, cancel) and /v1/refunds like Stripe:
// same idempotency key and same parameters replay the first answer, other parameters get an
// idempotency_error.
type standIn struct {
	URL string

	mu       sync.Mutex
	mode     string // "" answer; "down" drop the connection unanswered; "lose-answer" process, then drop
	replies  map[string]standInReply
	held     []map[string]string // the form of every PaymentIntent that authorized (or paid) a card
	intents  map[string]string   // PaymentIntent id -> status
	captures int
	releases int
	refunds  int
	refunded map[string]bool // PaymentIntent ids
	requests int
}

type standInReply struct {
	params string
	status int
	body   []byte
}

func newStandIn(t testing.TB) *standIn {
	s := &standIn{replies: map[string]standInReply{}, refunded: map[string]bool{}, intents: map[string]string{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *standIn) setMode(m string) { s.mu.Lock(); s.mode = m; s.mu.Unlock() }

// counts returns the charges (captured PaymentIntents: money taken) and refunds so far.
func (s *standIn) counts() (charges, refunds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.captures, s.refunds
}

// holds returns how many PaymentIntents authorized a card, and how many of them were released.
func (s *standIn) holds() (authorized, released int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held), s.releases
}

func (s *standIn) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Stripe processes one request per idempotency key at a time; one lock for all is simpler.
func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.mode == "down" {
		drop(w)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer sk_test_") {
		writeStripe(w, http.StatusUnauthorized, stripeError("invalid_request_error", "", "Invalid API Key provided", ""))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeStripe(w, http.StatusBadRequest, stripeError("invalid_request_error", "", err.Error(), ""))
		return
	}
	key, params := r.Header.Get("Idempotency-Key"), r.URL.Path+"?"+r.PostForm.Encode()
	reply, replayed := s.replies[key]
	switch {
	case replayed && key != "" && reply.params != params:
		reply = standInReply{params, http.StatusBadRequest, stripeError("idempotency_error", "",
			"Keys for idempotent requests can only be used with the same parameters they were first used with.", "")}
	case replayed && key != "":
		w.Header().Set("Idempotent-Replayed", "true")
	default:
		reply.params = params
		reply.status, reply.body = s.handle(r)
		if key != "" {
			s.replies[key] = reply
		}
	}
	if s.mode == "lose-answer" {
		// Also for replays: net/http itself retries a POST with an Idempotency-Key once.
		drop(w)
		return
	}
	writeStripe(w, reply.status, reply.body)
}

func (s *standIn) handle(r *http.Request) (int, []byte) {
	f := r.PostForm
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents":
		if f.Get("amount") == "" || f.Get("currency") == "" || f.Get("confirm") != "true" {
			return http.StatusBadRequest, stripeError("invalid_request_error", "parameter_missing", "Missing amount, currency or confirm", "")
		}
		// Stripe's usd limits (its API description of amount).
		if amount, _ := strconv.ParseInt(f.Get("amount"), 10, 64); amount > 99_999_999 {
			return http.StatusBadRequest, stripeError("invalid_request_error", "amount_too_large", "Amount must be no more than $999,999.99", "amount")
		} else if amount < 50 {
			return http.StatusBadRequest, stripeError("invalid_request_error", "amount_too_small", "Amount must be at least $0.50 usd", "amount")
		}
		id := fmt.Sprintf("pi_standin_%d", s.requests)
		pi := map[string]any{"id": id, "object": "payment_intent",
			"amount": json.Number(f.Get("amount")), "currency": f.Get("currency"), "payment_method": f.Get("payment_method"),
			"capture_method": f.Get("capture_method"), "metadata": map[string]string{"orderId": f.Get("metadata[orderId]")}}
		switch f.Get("payment_method") {
		case pmDeclined:
			return http.StatusPaymentRequired, stripeError("card_error", "card_declined", "Your card was declined.", "")
		case pmInsufficientFund:
			return http.StatusPaymentRequired, stripeError("card_error", "card_declined", "Your card has insufficient funds.", "")
		case pmMissing:
			return http.StatusBadRequest, stripeError("invalid_request_error", "resource_missing",
				"No such PaymentMethod: '"+pmMissing+"'", "payment_method")
		case pmAuthRequired:
			pi["status"], pi["next_action"] = "requires_action", map[string]string{"type": "use_stripe_sdk"}
		default:
			pi["status"] = "succeeded"
			if f.Get("capture_method") == "manual" {
				pi["status"] = "requires_capture"
			} else {
				s.captures++
			}
			s.intents[id] = pi["status"].(string)
			form := map[string]string{}
			for k := range f {
				form[k] = f.Get(k)
			}
			s.held = append(s.held, form)
		}
		b, _ := json.Marshal(pi)
		return http.StatusOK, b
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/payment_intents/"):
		id, action, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/"), "/")
		status, ok := s.intents[id]
		want, next := map[string][2]string{"capture": {"requires_capture", "succeeded"}, "cancel": {"requires_capture", "canceled"}}[action], ""
		switch {
		case !ok:
			return http.StatusNotFound, stripeError("invalid_request_error", "resource_missing", "No such payment_intent: '"+id+"'", "intent")
		case want[0] == "":
			break
		case status != want[0]:
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"type": "invalid_request_error",
				"code": "payment_intent_unexpected_state", "message": "This PaymentIntent's status is " + status,
				"payment_intent": map[string]any{"id": id, "object": "payment_intent", "status": status}}})
			return http.StatusBadRequest, b
		default:
			next = want[1]
		}
		if next == "" {
			return http.StatusNotFound, stripeError("invalid_request_error", "", "Unrecognized request URL", "")
		}
		s.intents[id] = next
		if action == "capture" {
			s.captures++
		} else {
			s.releases++
		}
		b, _ := json.Marshal(map[string]any{"id": id, "object": "payment_intent", "status": next})
		return http.StatusOK, b
	case r.Method == http.MethodPost && r.URL.Path == "/v1/refunds":
		pi := f.Get("payment_intent")
		if s.refunded[pi] {
			return http.StatusBadRequest, stripeError("invalid_request_error", "charge_already_refunded",
				"Charge for "+pi+" has already been refunded.", "")
		}
		s.refunded[pi] = true
		s.refunds++
		b, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("re_standin_%d", s.refunds), "object": "refund",
			"payment_intent": pi, "status": "succeeded"})
		return http.StatusOK, b
	}
	return http.StatusNotFound, stripeError("invalid_request_error", "", "Unrecognized request URL", "")
}

func stripeError(typ, code, message, param string) []byte {
	e := map[string]string{"type": typ, "message": message}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return b
}

func writeStripe(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_standin")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// drop closes the connection without an answer, as a network failure would.
func drop(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}
