package backing

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickit/tickit/knative/local/proc"
)

// StripeMock is stripe-mock, the stand-in for Stripe's API, behind a front that gives
// Stripe's answers for its declining and authenticating test cards (stripefront.go).
type StripeMock struct {
	URL  string // the front
	stop func()
}

// StartStripeMock runs stripe-mock, the tool pinned in functions/go.mod (built on first use,
// then taken from Go's build cache), with the fixtures that make payments succeed, behind the
// front on loopback. Both its HTTP and HTTPS listeners are bound to loopback: left alone it
// listens on every interface.
func StartStripeMock(root, fixtures string, output io.Writer) (*StripeMock, error) {
	var stderr bytes.Buffer
	tool := exec.Command("go", "tool", "-n", "stripe-mock")
	tool.Dir = filepath.Join(root, "functions")
	tool.Stderr = &stderr
	out, err := tool.Output()
	if err != nil {
		return nil, fmt.Errorf("stripe-mock: go tool -n stripe-mock: %v: %s", err, stderr.String())
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	tlsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(strings.TrimSpace(string(out)),
		"-http-addr", fmt.Sprintf("127.0.0.1:%d", port), "-https-addr", fmt.Sprintf("127.0.0.1:%d", tlsPort),
		"-fixtures", fixtures)
	cmd.Stdout, cmd.Stderr = output, output
	if err := proc.Start(cmd); err != nil {
		return nil, fmt.Errorf("stripe-mock: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() { proc.Stop(cmd, exited, 5*time.Second) }
	mock := &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(mock.String() + "/v1/charges")
		if err == nil {
			resp.Body.Close()
			return startStripeFront(mock, stop)
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("stripe-mock exited at start")
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("stripe-mock did not answer on %s", mock)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startStripeFront serves the front to stripe-mock on a loopback port.
func startStripeFront(mock *url.URL, stopMock func()) (*StripeMock, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stopMock()
		return nil, fmt.Errorf("stripe front: %w", err)
	}
	srv := &http.Server{Handler: stripeFront(mock), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &StripeMock{URL: "http://" + l.Addr().String(), stop: func() { srv.Close(); stopMock() }}, nil
}

// Close stops the front and stripe-mock.
func (s *StripeMock) Close() { s.stop() }
