// Package runtime turns a Function into what Knative Serving expects: a server on $PORT with
// GET /healthz, CloudEvents at POST /, REST under /api/, one log line per request or event,
// and a graceful exit on SIGTERM.
package runtime

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"knative.dev/pkg/logging"
	"knative.dev/pkg/signals"

	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/tracing"
)

// EventHandler handles one CloudEvent. It returns an optional reply event (the Broker ingests
// it) and an error: a malformed event (events.MalformedError) is answered 500, which the Broker
// retries and then dead-letters (a 4xx would be dropped unseen), any other error 503 so that
// the Broker delivers again later. Success, a duplicate and an event that no longer applies all
// return nil.
type EventHandler func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error)

// Function is one tickit function.
type Function struct {
	Name     string                   // "tickets": logs and the event source
	Routes   func(mux *http.ServeMux) // REST routes, patterns under /api/
	Events   map[string]EventHandler  // by CloudEvent type
	Sessions *session.Manager         // when set, tokens are read on every request
	// Background runs after requests, at most one at a time and once per BackgroundEvery
	// (the outbox flush). It gets a context that ends at shutdown.
	Background func(ctx context.Context)
}

// BackgroundEvery is the least time between two runs of Function.Background.
const BackgroundEvery = 10 * time.Second

// ShutdownGrace is how long in-flight requests may take after SIGTERM.
const ShutdownGrace = 10 * time.Second

// Serve runs fn until SIGTERM or SIGINT, then drains in-flight requests and returns; main
// exits 0 after it. A listener that cannot start ends the process with status 1.
func Serve(fn Function) {
	logger := NewLogger(fn.Name)
	ctx := logging.WithLogger(signals.NewContext(), logger)
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		logger.Fatalw("cannot listen", "port", port, "error", err)
	}
	stopTracing, err := tracing.Start(ctx, fn.Name)
	if err != nil {
		logger.Fatalw("cannot set up tracing from OTEL_* settings", "error", err)
	}
	if err := ServeListener(ctx, ln, fn); err != nil {
		logger.Fatalw("server failed", "error", err)
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := stopTracing(flushCtx); err != nil {
		logger.Warnw("spans not exported at shutdown", "error", err)
	}
	cancel()
	_ = logger.Sync()
}

// ServeListener serves fn on ln until ctx ends, then shuts down gracefully.
func ServeListener(ctx context.Context, ln net.Listener, fn Function) error {
	logger := logging.FromContext(ctx)
	background, stopBackground := context.WithCancel(logging.WithLogger(context.Background(), logger))
	defer stopBackground()
	srv := &http.Server{
		Handler:           Handler(background, fn),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Infow("serving", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if errors.Is(<-errc, http.ErrServerClosed) && err == nil {
		return nil
	}
	return err
}

// NewLogger returns the JSON logger every function logs with.
func NewLogger(function string) *zap.SugaredLogger {
	cfg := zap.NewProductionConfig()
	cfg.Sampling = nil
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	l, err := cfg.Build()
	if err != nil {
		l = zap.NewNop()
	}
	return l.Sugar().With("function", function)
}

// throttle runs f in the background, never twice at once and not more often than every.
type throttle struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	busy  bool
}

func (t *throttle) run(ctx context.Context, f func(context.Context)) {
	t.mu.Lock()
	if t.busy || time.Since(t.last) < t.every {
		t.mu.Unlock()
		return
	}
	t.busy, t.last = true, time.Now()
	t.mu.Unlock()
	go func() {
		defer func() { t.mu.Lock(); t.busy = false; t.mu.Unlock() }()
		f(ctx)
	}()
}
