package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/tracing"
)

// eventReceiver decodes a CloudEvent (binary or structured mode) and dispatches it by type.
// Its statuses follow what the real Broker does with them (measured by the delivery table,
// knative/delivery): 202 or 200 with a reply event: done; 503: a passing failure, delivered
// again after the Trigger's backoff; 500: an event the function can never take (malformed,
// a type it does not handle, too large), retried the same and then dead-lettered with the
// reason in knativeerrordata. Never another 4xx for an event: the NATS channel's dispatcher
// terminates one that comes before the last attempt, and the event reaches no dead-letter sink.
// 400 is only for a request that is not a CloudEvent, which the Broker never sends.
func eventReceiver(fn Function) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		r.Body = http.MaxBytesReader(w, r.Body, httpapi.MaxBody)
		e, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpRequest(r))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			logging.FromContext(ctx).Warnw("event too large, never taken: the Broker dead-letters it after its retries", "limit", tooLarge.Limit)
			refuse(w, http.StatusInternalServerError, fmt.Sprintf("event larger than %d bytes, never taken", tooLarge.Limit))
			return
		}
		if err != nil {
			refuse(w, http.StatusBadRequest, "not a CloudEvent: "+err.Error())
			return
		}
		ctx, end := tracing.StartEvent(ctx, r.Header, e)
		sw := &statusWriter{ResponseWriter: w}
		w = sw
		defer func() { end(sw.status) }()
		if f, ok := ctx.Value(eventKey{}).(*eventFields); ok {
			f.id, f.typ, f.trace = e.ID(), e.Type(), tracing.TraceID(ctx)
		}
		log := logging.FromContext(ctx).With("ce-id", e.ID(), "ce-type", e.Type())
		if id := tracing.TraceID(ctx); id != "" {
			log = log.With("trace_id", id)
		}
		ctx = logging.WithLogger(ctx, log)

		handle, ok := fn.Events[e.Type()]
		if !ok {
			log.Warn("event type not handled here, never taken: the Broker dead-letters it after its retries")
			refuse(w, http.StatusInternalServerError, "unknown event type "+e.Type()+", never taken")
			return
		}
		reply, err := handle(ctx, *e)
		switch {
		case events.IsMalformed(err):
			log.Warnw("malformed event, never taken: the Broker dead-letters it after its retries", "error", err)
			refuse(w, http.StatusInternalServerError, "malformed event, never taken: "+err.Error())
		case err != nil:
			log.Warnw("event failed, the Broker will retry", "error", err)
			refuse(w, http.StatusServiceUnavailable, "retry later: "+err.Error())
		case reply != nil:
			tracing.Stamp(ctx, reply)
			if err := cehttp.WriteResponseWriter(context.Background(), binding.ToMessage(reply), http.StatusOK, w); err != nil {
				log.Errorw("cannot write the reply event", "error", err)
			}
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
}

// MaxRefusal bounds the message of a refused event: the Broker copies the body, base64, into
// the dead letter's knativeerrordata, which Knative cuts at 1,024 characters (768 bytes).
const MaxRefusal = 512

// refuse answers an event with status and the API's error format, the message cut to MaxRefusal.
func refuse(w http.ResponseWriter, status int, message string) {
	if len(message) > MaxRefusal {
		message = strings.ToValidUTF8(message[:MaxRefusal], "")
	}
	httpapi.WriteJSON(w, status, map[string][]httpapi.FieldError{"errors": {{Message: message}}})
}
