package testenv_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestOnEachStoreOpensLungoThenTheWireServer(t *testing.T) {
	got := map[string]string{}
	testenv.OnEachStore(t, func(t *testing.T) {
		e, err := testenv.Store(t, "probe", nil).Engine(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got[t.Name()] = e.Name
	})
	wire := got[t.Name()+"/wire"]
	if got[t.Name()+"/memory"] != "lungo" || (wire != "FerretDB" && wire != "MongoDB") {
		t.Fatalf("engines by subtest: %v, want lungo, then FerretDB or MongoDB", got)
	}
}

func TestTheWireServerStopsWithItsTest(t *testing.T) {
	if os.Getenv("MONGO_TEST_URL") != "" {
		t.Skip("MONGO_TEST_URL: the server is the developer's, not the test's")
	}
	var addr string
	t.Run("server", func(t *testing.T) {
		u, err := url.Parse(testenv.Mongo(t))
		if err != nil {
			t.Fatal(err)
		}
		if testenv.Mongo(t) != u.String() {
			t.Fatal("a second call in one test started a second server")
		}
		addr = u.Host
		if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
			t.Fatalf("the server listens on %s, want loopback only", addr)
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("the server does not accept connections: %v", err)
		}
		c.Close()
	})
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after its test ended", addr)
	}
}
