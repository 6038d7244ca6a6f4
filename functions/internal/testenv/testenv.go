// Package testenv starts the real services a function's tests talk to, on loopback ports it
// picks, and tears them down when the test ends: an in-memory database through the production
// store code, a Mongo-wire server (FerretDB, mongo.go), a Broker stand-in that records events,
// redis-server, stripe-mock, sessions.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

// Store returns a fresh in-memory database opened through the production store code, or a
// fresh database on the wire server (WireStore) in the "wire" subtest of OnEachStore and, for
// profiling a function on the production path, wherever TICKIT_TEST_STORE=wire is set
// (`TICKIT_TEST_STORE=wire go test -bench . -cpuprofile cpu.out ./functions/tickets`).
func Store(t testing.TB, name string, setup store.Setup) *store.DB {
	if engineOf(t) == "wire" || os.Getenv("TICKIT_TEST_STORE") == "wire" {
		return WireStore(t, name, setup)
	}
	db := store.New("memory:", name, setup)
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	return db
}

// Context returns a context with a logger that writes through t (shown when a test fails).
// Benchmarks log as production does, in JSON, but to nowhere: the cost stays, the noise goes.
func Context(t testing.TB) context.Context {
	logger := zaptest.NewLogger(t)
	if _, ok := t.(*testing.B); ok {
		enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
		logger = zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zap.InfoLevel))
	}
	return logging.WithLogger(context.Background(), logger.Sugar())
}

// Serve runs fn's real handler on a loopback HTTP server for the test.
func Serve(t testing.TB, fn runtime.Function) *httptest.Server {
	ctx, cancel := context.WithCancel(Context(t))
	srv := httptest.NewServer(runtime.Handler(ctx, fn))
	t.Cleanup(func() { srv.Close(); cancel() })
	return srv
}

// Sessions returns a session manager with a random key.
func Sessions() *session.Manager {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return session.New(hex.EncodeToString(key), time.Hour, false)
}

// User is a signed-in test user.
type User struct {
	ID, Email, Token string
}

// NewUser returns a user with a fresh id and a valid token from m.
func NewUser(t testing.TB, m *session.Manager, email string) User {
	t.Helper()
	id := primitive.NewObjectID().Hex()
	tok, err := m.Issue(id, email)
	if err != nil {
		t.Fatal(err)
	}
	return User{ID: id, Email: email, Token: tok}
}

// Response is an HTTP answer read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not JSON (%v): %s", r.Status, err, r.Body)
	}
}

// ErrorList is the API's error body.
type ErrorList struct {
	Errors []struct {
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"errors"`
}

// Errors decodes the API's error body, failing the test when it is not one.
func (r Response) Errors(t testing.TB) ErrorList {
	t.Helper()
	var e ErrorList
	r.JSON(t, &e)
	if len(e.Errors) == 0 {
		t.Fatalf("response %d has no errors list: %s", r.Status, r.Body)
	}
	return e
}

// Call sends a request with an optional JSON body (any value but string and []byte is
// marshalled; those are sent as they are) and an optional bearer token.
func Call(t testing.TB, method, url string, body any, token string) Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
