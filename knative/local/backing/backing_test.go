package backing_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/backing"
)

func TestTheJWTKeyIsGeneratedOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	first, err := backing.JWTKey(dir)
	if err != nil || len(first) < 40 {
		t.Fatalf("JWTKey = %q, %v; want a long random key", first, err)
	}
	second, err := backing.JWTKey(dir)
	if err != nil || second != first {
		t.Fatalf("second JWTKey = %q, %v; want the first key again", second, err)
	}
	if other, _ := backing.JWTKey(t.TempDir()); other == first {
		t.Fatal("two data dirs got the same key")
	}
}

// redis sends one command and returns the first reply line.
func redis(t *testing.T, url, command string) string {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	args := strings.Fields(command)
	fmt.Fprintf(c, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = c.SetDeadline(time.Now().Add(time.Minute)) // a Redis that never answers fails the read
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		line, _ = r.ReadString('\n')
	}
	return strings.TrimSpace(line)
}

func TestRedisKeepsItsDataAcrossARestart(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not on PATH (make deps installs it); the embedded fallback keeps data in memory only")
	}
	dir := t.TempDir()
	r, err := backing.StartRedis(dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := redis(t, r.URL, "ZADD expirations 1700000000000 order-1"); got != ":1" {
		r.Close()
		t.Fatalf("ZADD answered %q", got)
	}
	r.Close()

	r2, err := backing.StartRedis(dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	// Redis accepts connections while it still loads its file: it answers -LOADING until done.
	got := redis(t, r2.URL, "ZSCORE expirations order-1")
	for deadline := time.Now().Add(time.Minute); strings.HasPrefix(got, "-LOADING") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		got = redis(t, r2.URL, "ZSCORE expirations order-1")
	}
	if got != "1700000000000" {
		t.Fatalf("after the restart ZSCORE answered %q, want the saved score", got)
	}
}

func TestWithoutRedisServerTheEmbeddedRedisAnswers(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no redis-server anywhere
	r, err := backing.StartRedis(t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !strings.Contains(r.Where, "in memory") {
		t.Errorf("Where = %q, want a warning that expirations live in memory", r.Where)
	}
	if got := redis(t, r.URL, "PING"); got != "+PONG" {
		t.Fatalf("PING answered %q", got)
	}
}

func TestStripeMockServesOnLoopbackWithTheFixtures(t *testing.T) {
	root, _ := filepath.Abs("../../..")
	fixtures := filepath.Join(root, "functions/payments/testdata/stripe-fixtures.json")
	if _, err := os.Stat(fixtures); err != nil {
		t.Fatal(err)
	}
	s, err := backing.StartStripeMock(root, fixtures, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/payment_intents", nil)
	req.Header.Set("Authorization", "Bearer sk_test_local")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("stripe-mock at %s answered %d", s.URL, resp.StatusCode)
	}
}
