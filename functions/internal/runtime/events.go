package runtime

import (
	"context"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/tracing"
)

// eventReceiver decodes a CloudEvent (binary or structured mode) and dispatches it by type.
// Statuses follow what the NATS JetStream channel does with them: 2xx done, 503 retried
// with backoff, 400 terminal (dead letter). Never 409: the channel would drop it silently.
func eventReceiver(fn Function) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		r.Body = http.MaxBytesReader(w, r.Body, httpapi.MaxBody)
		e, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
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
			log.Warn("event type not handled here")
			http.Error(w, "unknown event type "+e.Type(), http.StatusBadRequest)
			return
		}
		reply, err := handle(ctx, *e)
		switch {
		case events.IsMalformed(err):
			log.Warnw("malformed event", "error", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
		case err != nil:
			log.Warnw("event failed, the Broker will retry", "error", err)
			http.Error(w, "retry later: "+err.Error(), http.StatusServiceUnavailable)
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
