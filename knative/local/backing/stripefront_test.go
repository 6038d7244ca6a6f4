package backing_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/backing"
)

// stripeAnswer is what a Stripe API answer carries that these tests look at.
type stripeAnswer struct {
	ID, Object, Status string
	Amount             int64
	NextAction         *struct{ Type string } `json:"next_action"`
	Error              *struct {
		Type, Code, Message, Param string
		DeclineCode                string `json:"decline_code"`
		PaymentIntent              *struct {
			ID, Status       string
			LastPaymentError struct{ Code, Message string } `json:"last_payment_error"`
		} `json:"payment_intent"`
	}
}

// post sends a form to the Stripe API at base, as stripe-go does, and decodes the answer.
func post(t *testing.T, base, path string, form url.Values) (int, stripeAnswer) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer sk_test_local")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Encoding", "gzip") // as Go's transport asks; the front must still answer plain JSON
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var a stripeAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("POST %s answered %d, not JSON: %v: %s", path, resp.StatusCode, err, body)
	}
	return resp.StatusCode, a
}

func charge(paymentMethod string, confirm bool) url.Values {
	f := url.Values{"amount": {"2500"}, "currency": {"usd"}, "payment_method": {paymentMethod}, "payment_method_types[]": {"card"}}
	if confirm {
		f.Set("confirm", "true")
	}
	return f
}

func TestTheStripeFrontAnswersStripesTestCardsAndForwardsEverythingElse(t *testing.T) {
	root, _ := filepath.Abs("../../..")
	s, err := backing.StartStripeMock(root, filepath.Join(root, "functions/payments/testdata/stripe-fixtures.json"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	t.Run("declining test cards: 402 card_error with Stripe's code, decline code and message", func(t *testing.T) {
		// As docs.stripe.com/testing and /declines/codes give them, written out here on their own.
		for _, c := range []struct{ pm, code, decline, param, message string }{
			{"pm_card_chargeDeclined", "card_declined", "generic_decline", "", "Your card was declined."},
			{"pm_card_visa_chargeDeclined", "card_declined", "generic_decline", "", "Your card was declined."},
			{"pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds", "", "Your card has insufficient funds."},
			{"pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds", "", "Your card has insufficient funds."},
			{"pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card", "", "Your card was declined."},
			{"pm_card_chargeDeclinedLostCard", "card_declined", "lost_card", "", "Your card was declined."},
			{"pm_card_visa_chargeDeclinedStolenCard", "card_declined", "stolen_card", "", "Your card was declined."},
			{"pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card", "", "Your card was declined."},
			{"pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "exp_month", "Your card has expired."},
			{"pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc", "cvc", "Your card's security code is incorrect."},
			{"pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error", "", "An error occurred while processing your card. Try again in a little bit."},
		} {
			status, a := post(t, s.URL, "/v1/payment_intents", charge(c.pm, true))
			if status != http.StatusPaymentRequired || a.Error == nil {
				t.Errorf("%s: %d %+v, want 402 with an error", c.pm, status, a)
				continue
			}
			e := a.Error
			if e.Type != "card_error" || e.Code != c.code || e.DeclineCode != c.decline || e.Param != c.param || e.Message != c.message {
				t.Errorf("%s: error %+v, want card_error %s/%s param %q %q", c.pm, e, c.code, c.decline, c.param, c.message)
			}
			if pi := e.PaymentIntent; pi == nil || !strings.HasPrefix(pi.ID, "pi_") || pi.Status != "requires_payment_method" ||
				pi.LastPaymentError.Code != c.code || pi.LastPaymentError.Message != c.message {
				t.Errorf("%s: payment_intent %+v, want stripe-mock's PaymentIntent requiring a payment method, with the error", c.pm, pi)
			}
		}
	})

	t.Run("authentication test cards: a PaymentIntent that requires_action", func(t *testing.T) {
		for _, pm := range []string{"pm_card_authenticationRequired", "pm_card_threeDSecure2Required"} {
			status, a := post(t, s.URL, "/v1/payment_intents", charge(pm, true))
			if status != http.StatusOK || a.Object != "payment_intent" || a.Status != "requires_action" || a.NextAction == nil || a.NextAction.Type != "use_stripe_sdk" {
				t.Errorf("%s: %d %+v, want 200 requires_action with next_action use_stripe_sdk", pm, status, a)
			}
		}
	})

	t.Run("capture answers the PaymentIntent succeeded, cancel answers it canceled", func(t *testing.T) {
		if status, a := post(t, s.URL, "/v1/payment_intents/pi_123/capture", url.Values{}); status != http.StatusOK || a.Status != "succeeded" {
			t.Errorf("capture: %d %+v, want 200 succeeded", status, a)
		}
		if status, a := post(t, s.URL, "/v1/payment_intents/pi_123/cancel", url.Values{"cancellation_reason": {"abandoned"}}); status != http.StatusOK || a.Status != "canceled" {
			t.Errorf("cancel: %d %+v, want 200 canceled", status, a)
		}
	})

	t.Run("usd amounts Stripe does not charge: 400 amount_too_large / amount_too_small on amount", func(t *testing.T) {
		for amount, code := range map[string]string{"100000000": "amount_too_large", "49": "amount_too_small"} {
			f := charge("pm_card_visa", true)
			f.Set("amount", amount)
			if status, a := post(t, s.URL, "/v1/payment_intents", f); status != http.StatusBadRequest || a.Error == nil ||
				a.Error.Type != "invalid_request_error" || a.Error.Code != code || a.Error.Param != "amount" {
				t.Errorf("amount %s: %d %+v, want 400 %s on amount", amount, status, a, code)
			}
		}
		for _, amount := range []string{"99999999", "50"} {
			f := charge("pm_card_visa", true)
			f.Set("amount", amount)
			if status, a := post(t, s.URL, "/v1/payment_intents", f); status != http.StatusOK || a.Error != nil {
				t.Errorf("amount %s: %d %+v, want stripe-mock's 200", amount, status, a)
			}
		}
	})

	t.Run("everything else is stripe-mock's own answer", func(t *testing.T) {
		if status, a := post(t, s.URL, "/v1/payment_intents", charge("pm_card_visa", true)); status != http.StatusOK || a.Status != "requires_capture" || a.Amount != 2500 {
			t.Errorf("pm_card_visa: %d %+v, want stripe-mock's authorized (requires_capture) PaymentIntent for 2500", status, a)
		}
		// Not confirmed: Stripe declines nothing yet.
		if status, a := post(t, s.URL, "/v1/payment_intents", charge("pm_card_chargeDeclined", false)); status != http.StatusOK || a.Error != nil {
			t.Errorf("an unconfirmed PaymentIntent with a declining card: %d %+v, want stripe-mock's 200", status, a)
		}
		// stripe-mock refuses a request that breaks the API description, whatever the card.
		bad := charge("pm_card_chargeDeclined", true)
		bad.Del("amount")
		if status, a := post(t, s.URL, "/v1/payment_intents", bad); status != http.StatusBadRequest || a.Error == nil || a.Error.Type != "invalid_request_error" {
			t.Errorf("no amount: %d %+v, want stripe-mock's 400 invalid_request_error", status, a)
		}
		if status, a := post(t, s.URL, "/v1/refunds", url.Values{"payment_intent": {"pi_123"}}); status != http.StatusOK || a.Object != "refund" {
			t.Errorf("refund: %d %+v, want stripe-mock's refund", status, a)
		}
	})
}
