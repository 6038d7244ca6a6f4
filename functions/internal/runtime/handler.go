package runtime

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/tracing"
)

// Handler returns fn's whole HTTP surface. ctx carries the logger and is the context
// Function.Background runs under; it should end when the server stops.
func Handler(ctx context.Context, fn Function) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("POST /{$}", eventReceiver(fn))
	if fn.Routes != nil {
		fn.Routes(mux)
	}

	var h http.Handler = notFoundAsJSON(mux)
	if fn.Sessions != nil {
		h = fn.Sessions.Authenticate(h)
	}
	h = recoverAsJSON(h)
	if fn.Background != nil {
		t := &throttle{every: BackgroundEvery}
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			t.run(ctx, fn.Background)
		})
	}
	return tracing.Handler(withLogger(logging.FromContext(ctx), logRequests(h)), untraced)
}

// untraced are the requests tracing.Handler leaves alone: health checks, and CloudEvents,
// whose span eventReceiver starts once it has read the event's own trace context.
func untraced(r *http.Request) bool {
	return r.URL.Path == "/healthz" || (r.URL.Path == "/" && r.Method == http.MethodPost)
}

// withLogger gives every request the function's logger, naming the request's trace if any.
func withLogger(logger *zap.SugaredLogger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := tracing.TraceID(r.Context()); id != "" {
			next.ServeHTTP(w, r.WithContext(logging.WithLogger(r.Context(), logger.With("trace_id", id))))
			return
		}
		next.ServeHTTP(w, r.WithContext(logging.WithLogger(r.Context(), logger)))
	})
}

// notFoundAsJSON answers unknown routes (and wrong methods) in the API's error format
// instead of the mux's plain text.
func notFoundAsJSON(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			tracing.Name(r, r.Pattern)
			return
		}
		// The mux knows whether the path exists for another method; ask it without writing.
		probe := &statusProbe{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			httpapi.WriteError(w, r, httpapi.NewError(http.StatusMethodNotAllowed, "Method Not Allowed"))
			return
		}
		httpapi.WriteError(w, r, httpapi.ErrNotFound)
	})
}

// statusProbe is a ResponseWriter that only keeps the status and headers.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }

// recoverAsJSON turns a panic into a 500 in the API's error format; the panic goes to the log.
func recoverAsJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logging.FromContext(r.Context()).Errorw("panic", "panic", p, "path", r.URL.Path)
				httpapi.WriteError(w, r, httpapi.NewError(http.StatusInternalServerError, "Something went wrong"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status a handler wrote, for the log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

type eventKey struct{}

// eventFields is filled by the event receiver so that the request's one log line names the event.
type eventFields struct{ id, typ, trace string }

// logRequests writes one line per request (health checks aside): method, path, status, time,
// and for CloudEvents their id and type.
func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ev := &eventFields{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), eventKey{}, ev)))
		fields := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start).String()}
		if ev.typ != "" {
			fields = append(fields, "ce-id", ev.id, "ce-type", ev.typ)
		}
		if ev.trace != "" {
			fields = append(fields, "trace_id", ev.trace)
		}
		logging.FromContext(r.Context()).Infow("request", fields...)
	})
}
