package events_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tickit/tickit/events"
)

// fixture reads events/testdata/<type>.json into a payload of type T.
func fixture[T events.Payload](t *testing.T) T {
	t.Helper()
	var p T
	b, err := os.ReadFile(filepath.Join("testdata", p.Type()+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("fixture %s: %v", p.Type(), err)
	}
	return p
}

// overTheWire sends e through a real HTTP request in the given mode and decodes it again.
func overTheWire(t *testing.T, e cloudevents.Event, structured bool) cloudevents.Event {
	t.Helper()
	ctx := context.Background()
	if structured {
		ctx = binding.WithForceStructured(ctx)
	} else {
		ctx = binding.WithForceBinary(ctx)
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	if structured != strings.HasPrefix(req.Header.Get("Content-Type"), "application/cloudevents+json") {
		t.Fatalf("structured=%v but content type is %q", structured, req.Header.Get("Content-Type"))
	}
	got, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	return *got
}

func roundTrip[T events.Payload](t *testing.T) {
	t.Run(T.Type(*new(T)), func(t *testing.T) {
		// Arrange
		want := fixture[T](t)
		e := events.New(want)

		for _, structured := range []bool{false, true} {
			// Act
			got := overTheWire(t, e, structured)
			p, err := events.Decode[T](got)

			// Assert
			if err != nil {
				t.Fatalf("structured=%v: decode: %v", structured, err)
			}
			if !reflect.DeepEqual(p, want) {
				t.Fatalf("structured=%v: payload changed on the wire:\n got %+v\nwant %+v", structured, p, want)
			}
			if got.ID() != e.ID() || got.Source() != events.Source(publisher(want.Type())) || got.Subject() != want.Subject() {
				t.Fatalf("attributes changed: id %q source %q subject %q", got.ID(), got.Source(), got.Subject())
			}
			if want.Subject() != "" && got.Extensions()[events.PartitionKey] != want.Subject() {
				t.Fatalf("partitionkey = %v, want %q", got.Extensions()[events.PartitionKey], want.Subject())
			}
			if got.DataContentType() != cloudevents.ApplicationJSON || got.Time().IsZero() {
				t.Fatalf("datacontenttype %q, time %v", got.DataContentType(), got.Time())
			}
			if err := events.Check(got); err != nil {
				t.Fatalf("Check: %v", err)
			}
		}
	})
}

func publisher(eventType string) string {
	for _, r := range events.Catalogue {
		if r.Type == eventType {
			return r.Publisher
		}
	}
	return ""
}

func TestEveryTypeSurvivesTheWireInBothModes(t *testing.T) {
	roundTrip[events.TicketCreated](t)
	roundTrip[events.TicketUpdated](t)
	roundTrip[events.OrderCreated](t)
	roundTrip[events.OrderCancelled](t)
	roundTrip[events.OrderCompleted](t)
	roundTrip[events.ExpirationCompleted](t)
	roundTrip[events.PaymentCreated](t)
	roundTrip[events.PaymentRejected](t)
	roundTrip[events.PaymentRefused](t)
	roundTrip[events.ReservationRefused](t)
	roundTrip[events.Ping](t)
}

func TestEveryCatalogueTypeHasAFixture(t *testing.T) {
	for _, r := range events.Catalogue {
		b, err := os.ReadFile(filepath.Join("testdata", r.Type+".json"))
		if err != nil {
			t.Fatalf("%s: %v", r.Type, err)
		}
		e := cloudevents.NewEvent()
		e.SetID("fixture")
		e.SetSource("/test")
		e.SetType(r.Type)
		_ = e.SetData(cloudevents.ApplicationJSON, json.RawMessage(b))
		if err := events.Check(e); err != nil {
			t.Errorf("fixture %s is not valid: %v", r.Type, err)
		}
	}
}

func TestNewWithIDKeepsTheID(t *testing.T) {
	e := events.NewWithID("expiration-65a1b2c3d4e5f60718293a4c", events.ExpirationCompleted{OrderID: "65a1b2c3d4e5f60718293a4c"})
	if e.ID() != "expiration-65a1b2c3d4e5f60718293a4c" || e.Source() != "/tickit/expiration" {
		t.Fatalf("id %q source %q", e.ID(), e.Source())
	}
	if a, b := events.New(events.Ping{}), events.New(events.Ping{}); a.ID() == b.ID() {
		t.Fatal("New returned the same id twice")
	}
}

func TestMalformedEventsAreRejected(t *testing.T) {
	const tid = "65a1b2c3d4e5f60718293a4b"
	withData := func(typ, data string) cloudevents.Event {
		e := cloudevents.NewEvent()
		e.SetID("x")
		e.SetSource("/test")
		e.SetType(typ)
		_ = e.SetData(cloudevents.ApplicationJSON, json.RawMessage(data))
		return e
	}
	cases := map[string]cloudevents.Event{
		"unknown type":                       withData("dev.tickit.nope", `{}`),
		"not json":                           withData(events.TypeTicketCreated, `{"id":`),
		"wrong field type":                   withData(events.TypeTicketCreated, `{"id":"`+tid+`","version":"1","title":"a","price":1,"userId":"`+tid+`"}`),
		"missing id":                         withData(events.TypeTicketCreated, `{"version":0,"title":"a","price":1,"userId":"`+tid+`"}`),
		"id not hex":                         withData(events.TypeOrderCancelled, `{"id":"zz","version":1,"ticket":{"id":"`+tid+`"}}`),
		"negative version":                   withData(events.TypeOrderCancelled, `{"id":"`+tid+`","version":-1,"ticket":{"id":"`+tid+`"}}`),
		"price with 3 decimal":               withData(events.TypeTicketCreated, `{"id":"`+tid+`","version":0,"title":"a","price":1.999,"userId":"`+tid+`"}`),
		"zero amount":                        withData(events.TypePaymentCreated, `{"id":"`+tid+`","orderId":"`+tid+`","stripeId":"pi_1","amount":0,"currency":"usd"}`),
		"status not created":                 withData(events.TypeOrderCreated, `{"id":"`+tid+`","version":0,"status":"complete","userId":"`+tid+`","userEmail":"a@b.c","expiresAt":"2030-01-01T00:00:00Z","ticket":{"id":"`+tid+`","title":"t","price":1}}`),
		"empty payload":                      withData(events.TypeExpirationCompleted, `null`),
		"unknown reject reason":              withData(events.TypePaymentRejected, `{"orderId":"`+tid+`","paymentId":"`+tid+`","reason":"bored"}`),
		"refusal without reason":             withData(events.TypePaymentRefused, `{"orderId":"`+tid+`","paymentId":"`+tid+`","reason":" "}`),
		"refused reservation without ticket": withData(events.TypeReservationRefused, `{"orderId":"`+tid+`"}`),
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			err := events.Check(e)
			if !events.IsMalformed(err) {
				t.Fatalf("want a MalformedError, got %v", err)
			}
		})
	}

	// A payload decoded as the wrong type is malformed too.
	if _, err := events.Decode[events.TicketCreated](withData(events.TypeTicketUpdated, `{}`)); !events.IsMalformed(err) {
		t.Fatalf("decoding as the wrong type: %v", err)
	}
}

func TestConsumedFollowsTheCatalogue(t *testing.T) {
	got := events.Consumed("expiration")
	want := []string{events.TypeOrderCreated, events.TypeOrderCancelled, events.TypeOrderCompleted, events.TypePing}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Consumed(expiration) = %v, want %v", got, want)
	}
}
