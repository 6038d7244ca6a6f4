package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
)

// PartitionKey is the CloudEvents partitioning extension; set to the entity id so that a
// partitioned channel keeps one entity's events in order.
const PartitionKey = "partitionkey"

// New returns the CloudEvent for a payload with a fresh random id.
func New(p Payload) cloudevents.Event { return NewWithID(uuid.NewString(), p) }

// NewWithID returns the CloudEvent for a payload with the given id. Use it where retries of one
// fact must carry one id so that the Broker and consumers can drop the repeats.
func NewWithID(id string, p Payload) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(p.Type())
	e.SetSource(Source(publisherOf(p.Type())))
	e.SetTime(time.Now().UTC())
	if s := p.Subject(); s != "" {
		e.SetSubject(s)
		e.SetExtension(PartitionKey, s)
	}
	// Marshalling our own payload types cannot fail.
	_ = e.SetData(cloudevents.ApplicationJSON, p)
	return e
}

// MalformedError says an event cannot be processed, ever: the wrong type, data that is not
// the type's JSON, or a payload that breaks the contract. Handlers answer it with 400.
type MalformedError struct {
	Type string
	Err  error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed %s event: %v", e.Type, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// IsMalformed reports whether err says an event is malformed.
func IsMalformed(err error) bool {
	var m *MalformedError
	return errors.As(err, &m)
}

// Decode checks that e is an event of T's type with valid data, and returns the payload.
func Decode[T Payload](e cloudevents.Event) (T, error) {
	var p T
	if e.Type() != p.Type() {
		return p, &MalformedError{e.Type(), fmt.Errorf("expected type %s", p.Type())}
	}
	if err := e.Validate(); err != nil {
		return p, &MalformedError{e.Type(), err}
	}
	if ct := e.DataMediaType(); ct != "" && ct != cloudevents.ApplicationJSON {
		return p, &MalformedError{e.Type(), fmt.Errorf("datacontenttype %q is not application/json", ct)}
	}
	data := bytes.TrimSpace(e.Data())
	if len(data) > 0 && !bytes.Equal(data, []byte("null")) {
		if err := json.Unmarshal(data, &p); err != nil {
			return p, &MalformedError{e.Type(), err}
		}
	}
	if err := p.Validate(); err != nil {
		return p, &MalformedError{e.Type(), err}
	}
	return p, nil
}

// Check validates any event of the catalogue: a known type and a valid payload.
func Check(e cloudevents.Event) error {
	var err error
	switch e.Type() {
	case TypeTicketCreated:
		_, err = Decode[TicketCreated](e)
	case TypeTicketUpdated:
		_, err = Decode[TicketUpdated](e)
	case TypeOrderCreated:
		_, err = Decode[OrderCreated](e)
	case TypeOrderCancelled:
		_, err = Decode[OrderCancelled](e)
	case TypeOrderCompleted:
		_, err = Decode[OrderCompleted](e)
	case TypeExpirationCompleted:
		_, err = Decode[ExpirationCompleted](e)
	case TypePaymentCreated:
		_, err = Decode[PaymentCreated](e)
	case TypePaymentRejected:
		_, err = Decode[PaymentRejected](e)
	case TypePaymentRefused:
		_, err = Decode[PaymentRefused](e)
	case TypeReservationRefused:
		_, err = Decode[ReservationRefused](e)
	case TypePing:
		_, err = Decode[Ping](e)
	default:
		err = &MalformedError{e.Type(), errors.New("unknown event type")}
	}
	return err
}
