package testenv

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/runtime"
)

// ServeQuiet is Serve for benchmarks: the same handler, with its one log line per request
// discarded, so that the output holds the figures (benchmark logs are always printed) and
// logging does not weigh on them.
func ServeQuiet(b testing.TB, fn runtime.Function) *httptest.Server {
	ctx, cancel := context.WithCancel(logging.WithLogger(context.Background(), zap.NewNop().Sugar()))
	srv := httptest.NewUnstartedServer(runtime.Handler(ctx, fn))
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	b.Cleanup(func() { srv.Close(); cancel() })
	return srv
}
