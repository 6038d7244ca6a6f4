package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tickit/tickit/functions/internal/testenv"
)

// BenchmarkProxy measures one API request through the gateway to a function that answers at
// once, over loopback, 8 clients per CPU: the gateway's own cost per request.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `[{"id":"65a1b2c3d4e5f60718293a4c","title":"Concert","price":19.99}]`)
	}))
	b.Cleanup(up.Close)
	fn, err := NewFunction(Config{AuthURL: up.URL, TicketsURL: up.URL, OrdersURL: up.URL, PaymentsURL: up.URL, UI: builtApp()})
	if err != nil {
		b.Fatal(err)
	}
	srv := testenv.ServeQuiet(b, fn)
	get(b, srv.URL+"/api/tickets", 8)
}

// BenchmarkAppPage measures serving index.html for an app route (the SPA fallback).
func BenchmarkAppPage(b *testing.B) {
	fn, err := NewFunction(Config{AuthURL: "http://a", TicketsURL: "http://t", OrdersURL: "http://o", PaymentsURL: "http://p", UI: builtApp()})
	if err != nil {
		b.Fatal(err)
	}
	srv := testenv.ServeQuiet(b, fn)
	get(b, srv.URL+"/tickets/65a1b2c3d4e5f60718293a4c", 8)
}

// get sends b.N GETs from perCPU goroutines per CPU and reports requests per second.
func get(b *testing.B, url string, perCPU int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(perCPU)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
