package backing

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tickit/tickit/knative/local/proc"
)

// Redis is the Redis the expiration function uses.
type Redis struct {
	URL   string
	Where string // for the start-up line
	stop  func()
}

// StartRedis starts redis-server from PATH on a free loopback port with its data (an
// append-only file, so pending expirations survive a restart) under dir. Without
// redis-server it runs the embedded miniredis, whose data lives in memory only.
func StartRedis(dir string, output io.Writer) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("redis: embedded miniredis: %w", err)
		}
		return &Redis{URL: "redis://" + m.Addr(), Where: "embedded miniredis: redis-server is not on PATH, pending expirations live in memory only", stop: m.Close}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--save", "", "--protected-mode", "yes")
	cmd.Stdout, cmd.Stderr = output, output
	if err := proc.Start(cmd); err != nil {
		return nil, fmt.Errorf("redis: start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r := &Redis{URL: "redis://" + addr + "/0", Where: "redis-server " + addr + ", data " + dir,
		stop: func() { proc.Stop(cmd, exited, 10*time.Second) }}
	if err := waitTCP(addr, exited, 20*time.Second); err != nil {
		r.stop()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return r, nil
}

// Close stops the server (redis-server writes its append-only file on SIGTERM).
func (r *Redis) Close() { r.stop() }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until something accepts connections on addr, or the process exited.
func waitTCP(addr string, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the process exited before listening on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v", addr, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
