package store_test

import (
	"context"
	"os"
	"testing"

	"github.com/tickit/tickit/functions/internal/store"
)

func TestTheEngineIsWhatTheServerSaysItIs(t *testing.T) {
	for name, db := range engines(t, nil) {
		t.Run(name, func(t *testing.T) {
			e, err := db.Engine(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := store.Engine{Name: "lungo", Atomic: true}
			if name == "wire" {
				// testenv's own server is a FerretDB, which says so in its buildInfo reply.
				want = store.Engine{Name: "FerretDB", Version: e.Version}
				if os.Getenv("MONGO_TEST_URL") != "" && e.Name == "MongoDB" {
					want = store.Engine{Name: "MongoDB", Version: e.Version, Atomic: true}
				}
			}
			if e != want {
				t.Fatalf("engine %+v, want %+v", e, want)
			}
		})
	}
}
