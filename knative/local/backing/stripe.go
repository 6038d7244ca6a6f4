package backing

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickit/tickit/knative/local/proc"
)

// StripeMock is stripe-mock, the stand-in for Stripe's API.
type StripeMock struct {
	URL  string
	stop func()
}

// StartStripeMock runs stripe-mock, the tool pinned in functions/go.mod (built on first use,
// then taken from Go's build cache), with the fixtures that make payments succeed. Both its
// HTTP and HTTPS listeners are bound to loopback: left alone it listens on every interface.
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
	s := &StripeMock{URL: fmt.Sprintf("http://127.0.0.1:%d", port), stop: func() { proc.Stop(cmd, exited, 5*time.Second) }}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/v1/charges")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("stripe-mock exited at start")
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("stripe-mock did not answer on %s", s.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops stripe-mock.
func (s *StripeMock) Close() { s.stop() }
