package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/testenv"
)

const orderID = "65a1b2c3d4e5f60718293a4c"

// echoFunction handles expiration.completed: it fails retryably for one order id, panics for
// another, and otherwise replies with a payment.rejected naming the order.
func echoFunction() runtime.Function {
	return runtime.Function{
		Name: "echo",
		Routes: func(mux *http.ServeMux) {
			mux.Handle("GET /api/things/{id}", httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				switch r.PathValue("id") {
				case "panic":
					panic("boom")
				case "missing":
					return httpapi.ErrNotFound
				case "broken":
					return errors.New("database on fire")
				}
				httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
				return nil
			}))
		},
		Events: map[string]runtime.EventHandler{
			events.TypeExpirationCompleted: func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
				p, err := events.Decode[events.ExpirationCompleted](e)
				if err != nil {
					return nil, err
				}
				if p.OrderID == "65a1b2c3d4e5f60718293aaa" {
					return nil, errors.New("replica one version behind")
				}
				reply := events.New(events.PaymentRejected{OrderID: p.OrderID, PaymentID: orderID})
				return &reply, nil
			},
			events.TypePing: func(context.Context, cloudevents.Event) (*cloudevents.Event, error) { return nil, nil },
		},
	}
}

func TestEventsAreAcceptedInBothModesAndRepliesComeBack(t *testing.T) {
	srv := testenv.Serve(t, echoFunction())
	for _, structured := range []bool{false, true} {
		// Act
		status, reply := testenv.Send(t, srv.URL, events.New(events.ExpirationCompleted{OrderID: orderID}), structured)

		// Assert
		if status != http.StatusOK || reply == nil {
			t.Fatalf("structured=%v: status %d, reply %v; want 200 with a reply event", structured, status, reply)
		}
		p, err := events.Decode[events.PaymentRejected](*reply)
		if err != nil || p.OrderID != orderID {
			t.Fatalf("reply %+v, %v", p, err)
		}
	}
}

func TestEventWithoutReplyIsAccepted(t *testing.T) {
	srv := testenv.Serve(t, echoFunction())
	if status, reply := testenv.Send(t, srv.URL, events.New(events.Ping{}), false); status != http.StatusAccepted || reply != nil {
		t.Fatalf("status %d reply %v, want 202 and no reply", status, reply)
	}
}

// What each answer makes the real Broker do is measured by the delivery table (knative/delivery:
// knative/local in make test, the MT Broker over NatsJetStreamChannel in make conformance): a
// 4xx before the last attempt is dropped without reaching the dead-letter sink, so an event a
// function can never take is answered 500, retried, and then dead-lettered with the reason.
func TestEventStatusesGuideTheBroker(t *testing.T) {
	srv := testenv.Serve(t, echoFunction())
	badData := events.New(events.ExpirationCompleted{OrderID: orderID})
	_ = badData.SetData(cloudevents.ApplicationJSON, map[string]string{"orderId": "not-an-id"})
	longBad := events.New(events.ExpirationCompleted{OrderID: orderID})
	_ = longBad.SetData(cloudevents.ApplicationJSON, map[string]string{"orderId": strings.Repeat("é", 2000)})
	cases := []struct {
		name    string
		event   cloudevents.Event
		want    int
		message string
	}{
		{"unknown type is never taken: retried, then dead-lettered", events.New(events.TicketCreated{}), http.StatusInternalServerError, "unknown event type"},
		{"malformed data is never taken: retried, then dead-lettered", badData, http.StatusInternalServerError, "malformed event, never taken"},
		{"a long reason is cut to fit the dead letter", longBad, http.StatusInternalServerError, "malformed event, never taken"},
		{"retryable error asks for redelivery", events.New(events.ExpirationCompleted{OrderID: "65a1b2c3d4e5f60718293aaa"}), http.StatusServiceUnavailable, "retry later: replica one version behind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := sendEvent(t, srv.URL, c.event)
			if status != c.want {
				t.Fatalf("status %d, want %d", status, c.want)
			}
			var got struct {
				Errors []httpapi.FieldError `json:"errors"`
			}
			if err := json.Unmarshal(body, &got); err != nil || len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Message, c.message) {
				t.Fatalf("body %s, want the error format with %q", body, c.message)
			}
			if n := len(got.Errors[0].Message); n > runtime.MaxRefusal || !utf8.ValidString(got.Errors[0].Message) {
				t.Fatalf("a message of %d bytes (valid UTF-8: %v), want at most %d", n, utf8.ValidString(got.Errors[0].Message), runtime.MaxRefusal)
			}
		})
	}
}

// sendEvent posts e in binary mode and returns the status and the body.
func sendEvent(t *testing.T, url string, e cloudevents.Event) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestNotACloudEventIsRejected(t *testing.T) {
	srv := testenv.Serve(t, echoFunction())
	resp := testenv.Call(t, http.MethodPost, srv.URL+"/", `{"hello":"world"}`, "")
	if resp.Status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.Status)
	}
	// Structured mode with a body that is not JSON: the SDK's own receiver answers 500 here.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("{not json"))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("structured garbage: status %d, want 400", r.StatusCode)
	}
}

func TestOversizedEventIsRejected(t *testing.T) {
	srv := testenv.Serve(t, echoFunction())
	big := events.New(events.ExpirationCompleted{OrderID: orderID})
	_ = big.SetData(cloudevents.ApplicationJSON, map[string]string{"orderId": orderID, "pad": strings.Repeat("x", 2<<20)})
	// Never taken, so answered as a malformed event: the Broker dead-letters it after its retries.
	if status, body := sendEvent(t, srv.URL, big); status != http.StatusInternalServerError || !strings.Contains(string(body), "never taken") {
		t.Fatalf("2 MiB event: status %d %s, want 500, never taken", status, body)
	}
}

func TestAPIErrorsUseTheErrorFormat(t *testing.T) {
	srv := testenv.Serve(t, echoFunction())
	cases := []struct {
		method, path string
		status       int
		message      string
	}{
		{"GET", "/api/nothing-here", 404, "Not Found"},
		{"GET", "/elsewhere", 404, "Not Found"},
		{"DELETE", "/api/things/1", 405, "Method Not Allowed"},
		{"GET", "/api/things/missing", 404, "Not Found"},
		{"GET", "/api/things/panic", 500, "Something went wrong"},
		{"GET", "/api/things/broken", 500, "Something went wrong"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp := testenv.Call(t, c.method, srv.URL+c.path, nil, "")
			if resp.Status != c.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, c.status, resp.Body)
			}
			if got := resp.Errors(t).Errors[0].Message; got != c.message {
				t.Fatalf("message %q, want %q", got, c.message)
			}
			if strings.Contains(string(resp.Body), "fire") {
				t.Fatalf("internal details leaked: %s", resp.Body)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	srv := testenv.Serve(t, echoFunction())
	if resp := testenv.Call(t, http.MethodGet, srv.URL+"/healthz", nil, ""); resp.Status != http.StatusOK {
		t.Fatalf("healthz %d", resp.Status)
	}
}
