package serving_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/serving"
)

// The test binary doubles as the function: with TEST_FUNCTION set it serves on $PORT.
func TestMain(m *testing.M) {
	switch os.Getenv("TEST_FUNCTION") {
	case "serve":
		serveAsFunction()
		return
	case "fail":
		fmt.Fprintln(os.Stderr, "missing required environment variable JWT_KEY")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func serveAsFunction() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"pid": os.Getpid(), "host": r.Host, "greeting": os.Getenv("GREETING"), "port": os.Getenv("PORT")})
	})
	mux.HandleFunc("GET /crash", func(w http.ResponseWriter, r *http.Request) { os.Exit(3) })
	var dialled atomic.Int64
	mux.HandleFunc("GET /connections", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, dialled.Load()) })
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		_ = srv.Shutdown(context.Background())
	}()
	_ = srv.ListenAndServe()
}

func newService(t *testing.T, mode string, idle time.Duration, minScale int) (*serving.Service, string) {
	t.Helper()
	svc := serving.New(serving.Spec{
		Name: "fn", Binary: os.Args[0], Idle: idle, MinScale: minScale,
		Env: []string{"TEST_FUNCTION=" + mode, "GREETING=hello"},
	})
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return svc, srv.URL
}

type whoami struct {
	Pid            int
	Host, Greeting string
	Port           string
}

func who(t *testing.T, url string) whoami {
	t.Helper()
	resp, err := client.Get(url + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /whoami: %d", resp.StatusCode)
	}
	var w whoami
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		t.Fatal(err)
	}
	return w
}

// client bounds every request of these tests: a function that hangs fails the test.
var client = &http.Client{Timeout: time.Minute}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || !strings.Contains(string(stat), ") Z ") // a zombie is dead
}

func TestTheFirstRequestStartsTheFunctionWithItsEnvironment(t *testing.T) {
	svc, url := newService(t, "serve", time.Minute, 0)
	if svc.Running() {
		t.Fatal("the function runs before any request")
	}

	w := who(t, url)

	if !svc.Running() || w.Greeting != "hello" || w.Port == "" {
		t.Fatalf("running %v, function saw %+v; want running, GREETING and PORT set", svc.Running(), w)
	}
	if !strings.HasPrefix(url, "http://"+w.Host) {
		t.Fatalf("the function saw Host %q, want the caller's (%s)", w.Host, url)
	}
}

func TestConcurrentFirstRequestsShareOneColdStart(t *testing.T) {
	_, url := newService(t, "serve", time.Minute, 0)
	pids := make(chan int, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); pids <- who(t, url).Pid }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("gave up after 5 minutes waiting for 20 first requests")
	}
	close(pids)
	first := <-pids
	for pid := range pids {
		if pid != first {
			t.Fatalf("requests were served by processes %d and %d, want one", first, pid)
		}
	}
}

func TestAnIdleFunctionScalesToZeroAndTheNextRequestStartsItAgain(t *testing.T) {
	svc, url := newService(t, "serve", 200*time.Millisecond, 0)
	first := who(t, url).Pid

	eventually(t, "scaled to zero", func() bool { return !svc.Running() })
	eventually(t, "the process gone", func() bool { return !alive(first) })
	second := who(t, url).Pid

	if second == first {
		t.Fatalf("the same process %d served after scaling to zero", first)
	}
}

func TestACrashedFunctionStartsAgainOnTheNextRequest(t *testing.T) {
	svc, url := newService(t, "serve", time.Minute, 0)
	first := who(t, url).Pid

	resp, err := client.Get(url + "/crash")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("a request that crashed the function: %d, want 502", resp.StatusCode)
	}
	eventually(t, "the runtime saw the crash", func() bool { return !svc.Running() })

	if second := who(t, url).Pid; second == first {
		t.Fatal("no new process after the crash")
	}
}

func TestMinScaleStartsTheFunctionWithoutARequestAndRestartsItAfterACrash(t *testing.T) {
	svc, url := newService(t, "serve", 50*time.Millisecond, 1)
	eventually(t, "started without a request", svc.Running)
	first := who(t, url).Pid

	resp, err := client.Get(url + "/crash")
	if err == nil {
		resp.Body.Close()
	}
	eventually(t, "a new process without a request", func() bool { return !alive(first) && svc.Running() })
}

func TestAFunctionThatCannotStartAnswers503WithTheReason(t *testing.T) {
	_, url := newService(t, "fail", time.Minute, 0)
	resp, err := client.Get(url + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Errors []struct{ Message string } }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusServiceUnavailable || len(body.Errors) != 1 ||
		!strings.Contains(body.Errors[0].Message, "fn function cannot start") || !strings.Contains(body.Errors[0].Message, "missing required environment variable JWT_KEY") {
		t.Fatalf("status %d body %+v, want 503 with the function's own last words", resp.StatusCode, body)
	}
}

func TestCloseStopsTheProcess(t *testing.T) {
	svc, url := newService(t, "serve", time.Minute, 0)
	pid := who(t, url).Pid

	svc.Close()

	if alive(pid) {
		t.Fatalf("process %d still runs after Close", pid)
	}
	if svc.Running() {
		t.Fatal("Running after Close")
	}
}

func TestScaleToZeroStopsTheProcessAtOnce(t *testing.T) {
	svc, url := newService(t, "serve", time.Minute, 0)
	pid := who(t, url).Pid

	svc.ScaleToZero()

	if svc.Running() || alive(pid) {
		t.Fatalf("running %v, process alive %v after ScaleToZero", svc.Running(), alive(pid))
	}
	if who(t, url).Pid == pid {
		t.Fatal("the next request reached the stopped process")
	}
}

// Concurrent requests reuse their connections to the function, as Knative's queue-proxy does
// (it keeps up to 1,000 idle connections to its container): a new connection per request cost
// the function an accept, a goroutine and a close each, which make bench counted as its CPU.
func TestConcurrentRequestsReuseTheirConnectionsToTheFunction(t *testing.T) {
	_, url := newService(t, "serve", time.Minute, 0)
	callers := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(path string) string {
		resp, err := callers.Get(url + path)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	get("/healthz") // started

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				get("/healthz")
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("200 requests did not finish within a minute")
	}

	if n, _ := strconv.Atoi(get("/connections")); n > 40 {
		t.Fatalf("200 requests from 20 callers opened %d connections to the function, want at most 40 (about one per caller)", n)
	}
}
