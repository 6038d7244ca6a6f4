package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// BenchmarkArgon2idHash is the cost of one password hash with the current parameters, the
// bulk of every sign-up and sign-in.
func BenchmarkArgon2idHash(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := hashPassword(ctx, "correct horse battery", currentParams); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/hash")
}

// The HTTP benchmarks drive the function over loopback from as many clients as cores.
// cpu-ms/op is the whole process's CPU time (server and client, from getrusage) per request.

func BenchmarkSignUp(b *testing.B) {
	url := benchServer(b) + "/api/users/signup"
	var n atomic.Int64
	measure(b, "signups/s", func(c *http.Client) error {
		body := fmt.Sprintf(`{"email":"user%d@example.com","password":"correct horse"}`, n.Add(1))
		return post(c, url, body, http.StatusCreated)
	})
}

func BenchmarkSignIn(b *testing.B) {
	base := benchServer(b)
	if err := post(testenv.Client, base+"/api/users/signup", `{"email":"ann@example.com","password":"correct horse"}`, http.StatusCreated); err != nil {
		b.Fatal(err)
	}
	// Wrong password and unknown email should cost the same: one hash each.
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"right password", `{"email":"ann@example.com","password":"correct horse"}`, http.StatusOK},
		{"wrong password", `{"email":"ann@example.com","password":"wrong horse"}`, http.StatusBadRequest},
		{"unknown email", `{"email":"bob@example.com","password":"correct horse"}`, http.StatusBadRequest},
	} {
		b.Run(tc.name, func(b *testing.B) {
			measure(b, "signins/s", func(c *http.Client) error {
				return post(c, base+"/api/users/signin", tc.body, tc.status)
			})
		})
	}
}

// BenchmarkCurrentUser is a request that only verifies the session token.
func BenchmarkCurrentUser(b *testing.B) {
	base := benchServer(b)
	token, err := session.New(testKey, time.Hour, false).Issue("5f0c1a2b3c4d5e6f70819203", "ann@example.com")
	if err != nil {
		b.Fatal(err)
	}
	measure(b, "req/s", func(c *http.Client) error {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/users/currentuser", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return send(c, req, http.StatusOK)
	})
}

// benchServer serves the function as main builds it, on an in-memory store, without logs,
// with limits no benchmark reaches: the counters are written as in production, but a
// thousand wrong passwords in a row are measured, not throttled.
func benchServer(b *testing.B) string {
	db := testenv.Store(b, database, setup)
	l := defaultLimits
	l.pair.max, l.client.max, l.account.max, l.signUp.max = math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64
	return testenv.Serve(b, newAPI(db, session.New(testKey, time.Hour, false), testTrusted, l).function()).URL
}

// measure runs op from parallel clients and reports its rate as unit and its CPU time.
func measure(b *testing.B, unit string, op func(*http.Client) error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	client := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(client); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func post(c *http.Client, url, body string, status int) error {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return send(c, req, status)
}

func send(c *http.Client, req *http.Request, status int) error {
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		return fmt.Errorf("%s %s: want %d, got %d %s", req.Method, req.URL.Path, status, res.StatusCode, body)
	}
	return nil
}
