package backing

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"knative.dev/pkg/network"
)

// testCard is how Stripe's test mode answers a confirmed PaymentIntent paid with one of its
// test PaymentMethods: a card_error, or a PaymentIntent that requires_action.
type testCard struct {
	code, declineCode, param, message string
	authenticate                      bool
}

// testCards are Stripe's documented test PaymentMethods that do not simply pay
// (docs.stripe.com/testing: declined payments, authentication), with Stripe's own error code,
// decline code, param and message. stripe-mock knows none of them: it pays every card.
var testCards = map[string]testCard{
	"pm_card_chargeDeclined":                       {code: "card_declined", declineCode: "generic_decline", message: "Your card was declined."},
	"pm_card_visa_chargeDeclined":                  {code: "card_declined", declineCode: "generic_decline", message: "Your card was declined."},
	"pm_card_chargeDeclinedInsufficientFunds":      {code: "card_declined", declineCode: "insufficient_funds", message: "Your card has insufficient funds."},
	"pm_card_visa_chargeDeclinedInsufficientFunds": {code: "card_declined", declineCode: "insufficient_funds", message: "Your card has insufficient funds."},
	"pm_card_chargeDeclinedLostCard":               {code: "card_declined", declineCode: "lost_card", message: "Your card was declined."},
	"pm_card_visa_chargeDeclinedLostCard":          {code: "card_declined", declineCode: "lost_card", message: "Your card was declined."},
	"pm_card_chargeDeclinedStolenCard":             {code: "card_declined", declineCode: "stolen_card", message: "Your card was declined."},
	"pm_card_visa_chargeDeclinedStolenCard":        {code: "card_declined", declineCode: "stolen_card", message: "Your card was declined."},
	"pm_card_chargeDeclinedExpiredCard":            {code: "expired_card", declineCode: "expired_card", param: "exp_month", message: "Your card has expired."},
	"pm_card_chargeDeclinedIncorrectCvc":           {code: "incorrect_cvc", declineCode: "incorrect_cvc", param: "cvc", message: "Your card's security code is incorrect."},
	"pm_card_chargeDeclinedProcessingError":        {code: "processing_error", declineCode: "processing_error", message: "An error occurred while processing your card. Try again in a little bit."},
	"pm_card_authenticationRequired":               {authenticate: true},
	"pm_card_threeDSecure2Required":                {authenticate: true},
}

type testCardKey struct{}

// statusKey carries the status a capture or cancel leaves its PaymentIntent in: stripe-mock is
// stateless and answers every PaymentIntent in its fixture's status (requires_capture).
type statusKey struct{}

// stripeFront forwards everything to stripe-mock, except what stripe-mock cannot show:
//   - a confirmed PaymentIntent created with one of testCards gets Stripe's answer for that
//     card; stripe-mock still sees (and validates) the request: its PaymentIntent becomes the
//     one in Stripe's answer, and its own refusal of a bad request stands;
//   - an amount outside what Stripe charges in usd (50 to 99,999,999 cents, Stripe's API
//     description of amount) is refused as Stripe refuses it, 400 amount_too_small/large;
//   - a capture answers the PaymentIntent succeeded, a cancel answers it canceled.
func stripeFront(mock *url.URL) http.Handler {
	proxy := &httputil.ReverseProxy{
		// Idle connections kept for payments' concurrent calls (the default transport keeps 2).
		Transport: network.NewProxyAutoTransport(256, 256),
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(mock)
			_, card := r.In.Context().Value(testCardKey{}).(testCard)
			_, status := r.In.Context().Value(statusKey{}).(string)
			if card || status {
				r.Out.Header.Del("Accept-Encoding") // the answer is rewritten: plain JSON
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if status, ok := resp.Request.Context().Value(statusKey{}).(string); ok && resp.StatusCode == http.StatusOK {
				return rewrite(resp, func(pi map[string]any) any { pi["status"] = status; return pi })
			}
			return answerTestCard(resp)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/payment_intents/") {
			switch {
			case strings.HasSuffix(r.URL.Path, "/capture"):
				r = r.WithContext(context.WithValue(r.Context(), statusKey{}, "succeeded"))
			case strings.HasSuffix(r.URL.Path, "/cancel"):
				r = r.WithContext(context.WithValue(r.Context(), statusKey{}, "canceled"))
			}
		}
		if r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents" {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			if refusal := amountRefusal(form); refusal != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]any{"error": refusal})
				return
			}
			if card, ok := testCards[form.Get("payment_method")]; ok && form.Get("confirm") == "true" {
				r = r.WithContext(context.WithValue(r.Context(), testCardKey{}, card))
			}
		}
		proxy.ServeHTTP(w, r)
	})
}

// amountRefusal is Stripe's error for a usd amount it does not charge, nil for any other form.
func amountRefusal(form url.Values) map[string]any {
	amount, err := strconv.ParseInt(form.Get("amount"), 10, 64)
	if err != nil || form.Get("currency") != "usd" {
		return nil
	}
	refusal := func(code, message string) map[string]any {
		return map[string]any{"type": "invalid_request_error", "code": code, "param": "amount", "message": message,
			"doc_url": "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(code, "_", "-")}
	}
	switch {
	case amount > 99_999_999:
		return refusal("amount_too_large", "Amount must be no more than $999,999.99")
	case amount < 50:
		return refusal("amount_too_small", "Amount must be at least $0.50 usd")
	}
	return nil
}

// rewrite replaces a JSON answer by change(its object).
func rewrite(resp *http.Response, change func(map[string]any) any) error {
	var obj map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&obj); err != nil {
		return err
	}
	resp.Body.Close()
	body, err := json.Marshal(change(obj))
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Del("Content-Encoding")
	return nil
}

// answerTestCard turns stripe-mock's PaymentIntent into Stripe's answer for the test card.
func answerTestCard(resp *http.Response) error {
	card, ok := resp.Request.Context().Value(testCardKey{}).(testCard)
	if !ok || resp.StatusCode != http.StatusOK {
		return nil
	}
	if !card.authenticate {
		resp.StatusCode, resp.Status = http.StatusPaymentRequired, "402 Payment Required"
	}
	return rewrite(resp, func(pi map[string]any) any {
		if card.authenticate {
			pi["status"] = "requires_action"
			pi["next_action"] = map[string]any{"type": "use_stripe_sdk", "use_stripe_sdk": map[string]any{"type": "three_d_secure_redirect"}}
			return pi
		}
		stripeErr := map[string]any{
			"type": "card_error", "code": card.code, "decline_code": card.declineCode, "message": card.message,
			"doc_url": "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(card.code, "_", "-"),
		}
		if card.param != "" {
			stripeErr["param"] = card.param
		}
		if charge, ok := pi["latest_charge"].(string); ok {
			stripeErr["charge"] = charge
		}
		pi["status"] = "requires_payment_method"
		pi["last_payment_error"] = stripeErr
		outer := maps.Clone(stripeErr)
		outer["payment_intent"] = pi
		return map[string]any{"error": outer}
	})
}
