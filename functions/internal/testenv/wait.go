package testenv

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// RequestTimeout bounds every request a test makes through Client: a server that hangs fails
// the test, naming the request, instead of hanging it until go test's own timeout.
const RequestTimeout = time.Minute

// Client is the HTTP client of every test request (Call, Send, and tests' own requests).
var Client = &http.Client{Timeout: RequestTimeout}

// Receive waits at most within for a value from ch; what names the wait in the failure.
// A closed channel gives its zero value, as a receive would.
func Receive[T any](t testing.TB, ch <-chan T, within time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("gave up after %v waiting for %s", within, what)
		var zero T
		return zero
	}
}

// Wait waits at most within for wg; what names the wait in the failure. The goroutines
// still running then are left behind (the test has failed).
func Wait(t testing.TB, wg *sync.WaitGroup, within time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	Receive(t, done, within, what)
}
