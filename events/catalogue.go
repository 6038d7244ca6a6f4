// Package events is tickit's event contract: the CloudEvent types, their payloads, the
// constructor that fills the attributes and the decoder that validates what arrives.
// No function defines an event of its own; they all import this package.
package events

// Event types (CloudEvents "type" attribute).
const (
	TypeTicketCreated       = "dev.tickit.ticket.created"
	TypeTicketUpdated       = "dev.tickit.ticket.updated"
	TypeOrderCreated        = "dev.tickit.order.created"
	TypeOrderCancelled      = "dev.tickit.order.cancelled"
	TypeOrderCompleted      = "dev.tickit.order.completed"
	TypeExpirationCompleted = "dev.tickit.expiration.completed"
	TypePaymentCreated      = "dev.tickit.payment.created"
	TypePaymentRejected     = "dev.tickit.payment.rejected"
	TypePaymentRefused      = "dev.tickit.payment.refused"
	TypeReservationRefused  = "dev.tickit.reservation.refused"
	// TypePing is sent by Knative's PingSource (and the local runtime's timer).
	TypePing = "dev.knative.sources.ping"
)

// Route says who publishes an event type and which functions consume it. The Trigger
// manifests, the local Broker and the manifest tests are all checked against this table.
type Route struct {
	Type      string
	Publisher string // a function name, or "pingsource"
	Consumers []string
}

// Catalogue is the event catalogue of DESIGN.md section 3, plus payment.refused and
// reservation.refused (issue 17: an order that can never complete is cancelled at once).
var Catalogue = []Route{
	{TypeTicketCreated, "tickets", []string{"orders"}},
	{TypeTicketUpdated, "tickets", []string{"orders"}},
	{TypeOrderCreated, "orders", []string{"tickets", "payments", "expiration"}},
	{TypeOrderCancelled, "orders", []string{"tickets", "payments", "expiration"}},
	{TypeOrderCompleted, "orders", []string{"tickets", "payments", "expiration", "emails"}},
	{TypeExpirationCompleted, "expiration", []string{"orders"}},
	{TypePaymentCreated, "payments", []string{"orders"}},
	{TypePaymentRejected, "orders", []string{"payments"}},
	{TypePaymentRefused, "payments", []string{"orders"}},
	{TypeReservationRefused, "tickets", []string{"orders"}},
	{TypePing, "pingsource", []string{"expiration"}},
}

// Consumed returns the event types the named function consumes, in catalogue order.
func Consumed(function string) []string {
	var types []string
	for _, r := range Catalogue {
		for _, c := range r.Consumers {
			if c == function {
				types = append(types, r.Type)
			}
		}
	}
	return types
}

// Source is the CloudEvents "source" of events published by the named function.
func Source(function string) string { return "/tickit/" + function }

func publisherOf(eventType string) string {
	for _, r := range Catalogue {
		if r.Type == eventType {
			return r.Publisher
		}
	}
	return ""
}
