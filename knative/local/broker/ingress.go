package broker

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// MaxEventSize bounds an event posted to the ingress.
const MaxEventSize = 4 << 20

// Ingress is the Broker ingress: POST /<namespace>/<broker> takes a CloudEvent (binary or
// structured mode) and answers 202 once it is stored, 400 when it is not a valid CloudEvent
// and 404 for a Broker that does not exist. Locally it also serves, under the same path:
// GET .../events (every step of every event, one JSON object per line, as they happen; with
// ?after=<seq>, the kept records after that one first, so that nothing is missed),
// GET .../deadletters and POST .../deadletters/{id}/replay.
func Ingress(brokers ...*Broker) http.Handler {
	mux := http.NewServeMux()
	for _, b := range brokers {
		path := "/" + b.ns + "/" + b.name
		mux.HandleFunc("POST "+path, b.serveEvent)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody("the broker ingress takes POST"))
		})
		mux.HandleFunc("GET "+path+"/events", b.serveFeed)
		mux.HandleFunc("GET "+path+"/deadletters", b.serveDeadLetters)
		mux.HandleFunc("POST "+path+"/deadletters/{id}/replay", b.serveReplay)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody("no broker at "+r.URL.Path))
	})
	return mux
}

func (b *Broker) serveEvent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxEventSize)
	e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("not a CloudEvent: "+err.Error()))
		return
	}
	if err := e.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("invalid CloudEvent: "+err.Error()))
		return
	}
	ctx, endSpan := b.traceIngress(r, e) // tracing.go
	if _, err := b.Publish(ctx, *e); errors.Is(err, ErrUnstorable) {
		writeJSON(w, http.StatusInternalServerError, errorBody(err.Error()))
		endSpan(http.StatusInternalServerError)
		return
	} else if err != nil {
		b.log.Errorw("cannot store an event", "id", e.ID(), "type", e.Type(), "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody("the broker cannot store events right now"))
		endSpan(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	endSpan(http.StatusAccepted)
}

func (b *Broker) serveFeed(w http.ResponseWriter, r *http.Request) {
	flusher, _ := w.(http.Flusher)
	cursor := b.feed.Cursor()
	if after := r.URL.Query().Get("after"); after != "" {
		n, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody("after: a record's seq (0 for every record kept), not "+strconv.Quote(after)))
			return
		}
		cursor = n
	}
	records, stop := b.feed.FollowFrom(cursor)
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case rec, ok := <-records:
			if !ok {
				return
			}
			if enc.Encode(rec) != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

func (b *Broker) serveDeadLetters(w http.ResponseWriter, r *http.Request) {
	list, err := b.DeadLetters(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody(err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (b *Broker) serveReplay(w http.ResponseWriter, r *http.Request) {
	n, err := b.Replay(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNoDeadLetter):
		writeJSON(w, http.StatusNotFound, errorBody(err.Error()))
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, errorBody(err.Error()))
	default:
		writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
	}
}

// errorBody is the error format of tickit's API.
func errorBody(msg string) any {
	return map[string][]map[string]string{"errors": {{"message": msg}}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
