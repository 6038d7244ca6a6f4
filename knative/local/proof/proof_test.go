package proof

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

func TestTablePrintsOneMetricPerLine(t *testing.T) {
	var out bytes.Buffer
	tb := NewTable(&out)
	tb.Add("route.pay.p50", 12.3456, "ms")
	tb.Add("events.count", 2000, "events")
	tb.Note("size %d", 5)
	want := "route.pay.p50 12.346 ms\nevents.count 2000 events\n# size 5\n"
	if out.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := Percentile(d, 0.5); p != 51 {
		t.Errorf("p50 %v, want 51", p)
	}
	if p := Percentile(d, 0.99); p != 100 {
		t.Errorf("p99 %v, want 100", p)
	}
	if p := Percentile(nil, 0.5); p != 0 {
		t.Errorf("p50 of nothing %v", p)
	}
}

func TestRunCountsSuccessesAndErrors(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]bool{}
	l := Run(100, 7, func(i int) error {
		mu.Lock()
		seen[i] = true
		mu.Unlock()
		if i%10 == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if len(seen) != 100 || len(l.Latencies) != 90 || l.Errors != 10 || l.FirstErr == nil {
		t.Fatalf("%d calls, %d latencies, %d errors (%v)", len(seen), len(l.Latencies), l.Errors, l.FirstErr)
	}
}

func TestCPUAndRSSOfThisProcess(t *testing.T) {
	before := CPUTime(os.Getpid())
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	if after := CPUTime(os.Getpid()); after <= before {
		t.Errorf("CPU time %v after spinning, %v before", after, before)
	}
	if rss := RSS(os.Getpid()); rss <= 1 {
		t.Errorf("RSS %v MiB", rss)
	}
	if CPUTime(0) != 0 || RSS(0) != 0 {
		t.Error("no process 0 to read, want 0")
	}
}

// recorder is a function stand-in that records the CloudEvent ids it got.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.ids = append(r.ids, req.Header.Get("Ce-Id"))
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func event(id, typ string) *http.Request {
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{}`))
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Subject", "t1")
	return req
}

func TestFaultsDeliverEveryEventTwiceWithANewID(t *testing.T) {
	f := NewFaults(1)
	fn := &recorder{}
	h := f.Wrap("tickets", fn)

	h.ServeHTTP(httptest.NewRecorder(), event("a", "dev.tickit.order.created"))
	if got := fn.got(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("faults off: %v, want the event once", got)
	}
	f.Start()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, event("b", "dev.tickit.order.created"))
	if rec.Code != http.StatusOK {
		t.Fatalf("the answer %d is not the function's", rec.Code)
	}
	if err := Eventually(5*time.Second, "the copy", func() (bool, error) { return len(fn.got()) == 3, nil }); err != nil {
		t.Fatal(err)
	}
	if got := fn.got(); got[1] != "b" || got[2] != "b-dup" {
		t.Fatalf("deliveries %v, want b then b-dup", got)
	}
	if f.Duplicated.Load() != 1 {
		t.Fatalf("duplicated %d", f.Duplicated.Load())
	}
}

func TestFaultsFailAFunctionAndHoldBackReplicaUpdates(t *testing.T) {
	f := NewFaults(2)
	f.Start()
	fn := &recorder{}
	f.Fail("payments")
	rec := httptest.NewRecorder()
	f.Wrap("payments", fn).ServeHTTP(rec, httptest.NewRequest("GET", "/api/payments", nil))
	if rec.Code != http.StatusInternalServerError || len(fn.got()) != 0 || f.Failed.Load() != 1 {
		t.Fatalf("failing function: %d, %v reached it", rec.Code, fn.got())
	}
	f.Fail("")

	// ticket.updated to orders: some are held back (503, the Broker retries them later).
	held := 0
	for i := range 100 {
		rec := httptest.NewRecorder()
		f.Wrap("orders", fn).ServeHTTP(rec, event(string(rune('a'+i%26))+"x", "dev.tickit.ticket.updated"))
		if rec.Code == http.StatusServiceUnavailable {
			held++
		}
	}
	if held == 0 || held == 100 || int64(held) != f.HeldBack.Load() {
		t.Fatalf("%d of 100 held back (counted %d), want some", held, f.HeldBack.Load())
	}
	if f.Stale.Load() == 0 {
		t.Fatal("no older ticket.updated delivered again")
	}
}

// writeLungo writes a lungo file as lungo's FileStore does.
func writeLungo(t *testing.T, dir, name string, namespaces bson.M) {
	t.Helper()
	ns := bson.M{}
	for k, docs := range namespaces {
		ns[k] = bson.M{"documents": docs, "indexes": bson.M{}}
	}
	b, err := bson.Marshal(bson.M{"namespaces": ns})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".bson"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFilesFindsWhatBreaksTheInvariants: consistent databases pass; a stale replica, an
// event left in an outbox, a cancellation tickets never saw and a missing email are each found.
func TestCheckFilesFindsWhatBreaksTheInvariants(t *testing.T) {
	tk, free, sold, cancelled := primitive.NewObjectID(), primitive.NewObjectID(), primitive.NewObjectID(), primitive.NewObjectID()
	write := func(dir string, replicaVersion int64, outbox bson.M, cancelledOrders []string, emails []any) {
		writeLungo(t, dir, "tickets", bson.M{"tickets.tickets": []any{
			bson.M{"_id": tk, "title": "A", "price": int64(100), "version": int64(3), "orderId": sold.Hex(), "sold": true, "cancelledOrders": []string{}, "outbox": outbox},
			bson.M{"_id": free, "title": "B", "price": int64(200), "version": int64(2), "orderId": "", "sold": false, "cancelledOrders": cancelledOrders},
		}})
		writeLungo(t, dir, "orders", bson.M{
			"orders.tickets": []any{
				bson.M{"_id": tk, "title": "A", "price": int64(100), "version": replicaVersion, "reservedBy": sold},
				bson.M{"_id": free, "title": "B", "price": int64(200), "version": int64(2), "reservedBy": nil},
			},
			"orders.orders": []any{
				bson.M{"_id": sold, "status": "complete", "version": int64(1), "ticket": bson.M{"id": tk.Hex()}},
				bson.M{"_id": cancelled, "status": "cancelled", "version": int64(1), "ticket": bson.M{"id": free.Hex()}},
			},
		})
		writeLungo(t, dir, "payments", bson.M{"payments.orders": []any{
			bson.M{"_id": sold, "status": "complete", "version": int64(1), "price": int64(100), "expiresAt": time.Now()},
			bson.M{"_id": cancelled, "status": "cancelled", "version": int64(1), "price": int64(100), "expiresAt": time.Now()},
		}})
		writeLungo(t, dir, "emails", bson.M{"emails.emails": emails})
	}
	check := func(dir string) []string {
		dbs, err := ReadDatabases(dir)
		if err != nil {
			t.Fatal(err)
		}
		var broken []string
		checkFiles(dbs, func(f string, a ...any) { broken = append(broken, f) })
		return broken
	}
	sent := []any{bson.M{"_id": sold.Hex(), "status": "sent", "subject": "Your ticket: A"}}

	good := t.TempDir()
	write(good, 3, nil, []string{cancelled.Hex()}, sent)
	if broken := check(good); len(broken) != 0 {
		t.Fatalf("consistent databases: %v", broken)
	}

	bad := t.TempDir()
	write(bad, 2, bson.M{"evt": bson.M{"type": "dev.tickit.ticket.updated"}}, nil,
		[]any{bson.M{"_id": "other", "status": "sent", "subject": "x"}})
	broken := check(bad)
	for _, want := range []string{"replica v%d", "outbox", "never heard of it", "its email"} {
		found := false
		for _, b := range broken {
			found = found || strings.Contains(b, want)
		}
		if !found {
			t.Errorf("not found: %q in %v", want, broken)
		}
	}
}
