// Package serving runs functions the way Knative Serving does, as local processes: a
// function starts on its first request (which waits, as behind Knative's activator), stops
// with SIGTERM after a time without traffic (scale to zero) unless min-scale keeps it, and
// starts again on the next request after a crash.
package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"knative.dev/pkg/network"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/proc"
)

// Spec is one function to run.
type Spec struct {
	Name     string
	Binary   string
	Env      []string      // the whole environment of the process, PORT aside
	MinScale int           // > 0: started at once and never scaled to zero
	Idle     time.Duration // scale to zero after this long without requests
	Output   io.Writer     // the function's stdout and stderr
	Log      *zap.SugaredLogger
}

// StartTimeout bounds a cold start: exec until GET /healthz answers 200.
const StartTimeout = 30 * time.Second

// StopGrace is how long a function may drain after SIGTERM before it is killed; the function
// runtime itself gives in-flight requests 10 s.
const StopGrace = 12 * time.Second

// Service is one function: a reverse proxy in front of zero or one process.
type Service struct {
	spec  Spec
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	cur      *process // nil: scaled to zero
	inflight int
	last     time.Time // end of the last request
	closed   bool
	stopped  chan struct{}
	wg       sync.WaitGroup // processes being stopped
}

// process is one run of the function's binary.
type process struct {
	cmd    *exec.Cmd
	port   int
	ready  chan struct{} // closed when /healthz answered 200
	exited chan struct{} // closed when the process ended
	err    error         // why it exited or did not become ready (read after exited)
	start  time.Time
}

// New returns the Service, started at once when min-scale asks for it.
func New(spec Spec) *Service {
	if spec.Log == nil {
		spec.Log = zap.NewNop().Sugar()
	}
	if spec.Output == nil {
		spec.Output = io.Discard
	}
	s := &Service{spec: spec, stopped: make(chan struct{})}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			p := r.In.Context().Value(processKey{}).(*process)
			r.SetURL(&url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", p.port)})
			r.Out.Host = r.In.Host // the function sees the Host it was called with
		},
		// As Knative's queue-proxy reaches its container (serving's buildTransport, for
		// containerConcurrency 0): up to 1,000 idle connections, so that concurrent requests
		// reuse them. The default transport keeps 2, and a new connection per request was
		// most of an empty request's CPU in the function.
		Transport:     network.NewProxyAutoTransport(1000, 1000),
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.spec.Log.Warnw("function did not answer", "function", s.spec.Name, "path", r.URL.Path, "error", err)
			writeError(w, http.StatusBadGateway, "the "+s.spec.Name+" function did not answer")
		},
	}
	go s.scaler()
	return s
}

type processKey struct{}

// ServeHTTP forwards the request to the function's process, starting it first if needed.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := s.acquire(r.Context())
	if err != nil {
		if r.Context().Err() == nil {
			s.spec.Log.Errorw("function cannot start", "function", s.spec.Name, "error", err)
		}
		writeError(w, http.StatusServiceUnavailable, "the "+s.spec.Name+" function cannot start: "+err.Error())
		return
	}
	defer s.release()
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), processKey{}, p)))
}

// Running reports whether a process serves the function now.
func (s *Service) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil && !isClosed(s.cur.exited)
}

// Start makes sure a process runs and is ready.
func (s *Service) Start(ctx context.Context) error {
	if _, err := s.acquire(ctx); err != nil {
		return err
	}
	s.release()
	return nil
}

// acquire returns a ready process, starting one when there is none (or it crashed), and
// counts the request in flight.
func (s *Service) acquire(ctx context.Context) (*process, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("the runtime is stopping")
	}
	if s.cur == nil || isClosed(s.cur.exited) {
		p, err := s.spawn()
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.cur = p
	}
	p := s.cur
	s.inflight++
	s.mu.Unlock()

	select {
	case <-p.ready:
		return p, nil
	case <-p.exited:
		s.release()
		return nil, p.err
	case <-ctx.Done():
		s.release()
		return nil, ctx.Err()
	}
}

func (s *Service) release() {
	s.mu.Lock()
	s.inflight--
	s.last = time.Now()
	s.mu.Unlock()
}

// spawn execs the binary on a free port and watches it become ready. Called with s.mu held.
func (s *Service) spawn() (*process, error) {
	port, err := backing.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.spec.Binary)
	cmd.Env = append(append([]string{}, s.spec.Env...), fmt.Sprintf("PORT=%d", port))
	last := &tail{max: 10}
	out := io.MultiWriter(s.spec.Output, last)
	cmd.Stdout, cmd.Stderr = out, out
	p := &process{cmd: cmd, port: port, ready: make(chan struct{}), exited: make(chan struct{}), start: time.Now()}
	if err := proc.Start(cmd); err != nil {
		return nil, fmt.Errorf("exec %s: %w", s.spec.Binary, err)
	}
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exited")
		}
		p.err = fmt.Errorf("the process %s", err)
		if output := last.String(); output != "" {
			p.err = fmt.Errorf("the process %s: %s", err, output[strings.LastIndexByte(output, '\n')+1:])
		}
		close(p.exited)
		s.mu.Lock()
		expected := s.cur != p
		s.mu.Unlock()
		if !expected {
			s.spec.Log.Warnw("function exited; the next request starts it again", "function", s.spec.Name, "error", err, "output", last.String())
		}
	}()
	go s.waitReady(p)
	return p, nil
}

// waitReady polls /healthz until it answers 200, as Knative's readiness probe does.
func (s *Service) waitReady(p *process) {
	client := &http.Client{Timeout: time.Second}
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", p.port)
	deadline := time.Now().Add(StartTimeout)
	for {
		resp, err := client.Get(health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				close(p.ready)
				s.spec.Log.Infow("cold start", "function", s.spec.Name, "duration", time.Since(p.start).Round(time.Millisecond).String())
				return
			}
		}
		select {
		case <-p.exited:
			return
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.spec.Log.Errorw("function not ready in time; stopping it", "function", s.spec.Name, "timeout", StartTimeout.String())
			s.retire(p)
			return
		}
	}
}

// scaler stops the process after Idle without requests (scale to zero), and keeps one
// running when min-scale says so.
func (s *Service) scaler() {
	every := s.spec.Idle / 4
	if every < 50*time.Millisecond {
		every = 50 * time.Millisecond
	}
	if s.spec.MinScale > 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if s.spec.MinScale > 0 {
			if err := s.Start(context.Background()); err != nil && !s.isClosed() {
				s.spec.Log.Errorw("function with min-scale cannot start", "function", s.spec.Name, "error", err)
			}
		}
		select {
		case <-s.stopped:
			return
		case <-tick.C:
		}
		if s.spec.MinScale > 0 {
			continue
		}
		s.mu.Lock()
		p := s.cur
		idle := p != nil && s.inflight == 0 && isClosed(p.ready) && time.Since(s.last) >= s.spec.Idle
		if idle {
			s.cur = nil
		}
		s.mu.Unlock()
		if idle {
			s.spec.Log.Infow("scaled to zero", "function", s.spec.Name, "idle", s.spec.Idle.String())
			s.retire(p)
		}
	}
}

// ScaleToZero stops the process now, as IDLE without traffic would: once no request is in
// flight, and it waits for the process to exit.
func (s *Service) ScaleToZero() {
	for {
		s.mu.Lock()
		p := s.cur
		if p == nil {
			s.mu.Unlock()
			return
		}
		if s.inflight == 0 {
			s.cur = nil
			s.mu.Unlock()
			s.retire(p)
			<-p.exited
			return
		}
		s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

// retire stops a process that no longer serves (SIGTERM, then SIGKILL after StopGrace).
func (s *Service) retire(p *process) {
	s.mu.Lock()
	if s.cur == p {
		s.cur = nil
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		proc.Stop(p.cmd, p.exited, StopGrace)
	}()
}

func (s *Service) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the function's process and waits for it to exit.
func (s *Service) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stopped)
	p := s.cur
	s.mu.Unlock()
	if p != nil {
		s.retire(p)
	}
	s.wg.Wait()
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string][]map[string]string{"errors": {{"message": msg}}})
}
