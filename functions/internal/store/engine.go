package store

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
)

// Engine is what serves a DB, as the server itself says (not a setting).
type Engine struct {
	// Name is "lungo" (memory:, file:), "FerretDB" (a wire server whose buildInfo reply
	// carries ferretdbVersion) or "MongoDB" (any other wire server).
	Name string
	// Version is the server's own version ("" for lungo); FerretDB's, not the MongoDB
	// version it claims to be.
	Version string
	// Atomic says a conditional single-document update (UpdateVersion, UpdateVersionWhere,
	// UpdateOne with a filter) is applied atomically: of many writers racing on one version,
	// exactly one wins. lungo and MongoDB: yes. FerretDB v1: no, it reads the document and
	// then writes it (TestConcurrentVersionedUpdatesHaveExactlyOneWinner measured 5 winners
	// of 50; VERSIONS.md), so it is a test server for the wire path, not a store for orders.
	Atomic bool
}

// Engine asks the database what serves it (MongoDB's buildInfo command on a wire server),
// opening the database if needed.
func (d *DB) Engine(ctx context.Context) (Engine, error) {
	db, err := d.Database(ctx)
	if err != nil {
		return Engine{}, err
	}
	if !strings.HasPrefix(d.url, "mongodb") {
		return Engine{Name: "lungo", Atomic: true}, nil
	}
	var info struct {
		Version         string `bson:"version"`
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return Engine{}, fmt.Errorf("store: buildInfo: %w", err)
	}
	if info.FerretDBVersion != "" {
		return Engine{Name: "FerretDB", Version: info.FerretDBVersion}, nil
	}
	return Engine{Name: "MongoDB", Version: info.Version, Atomic: true}, nil
}

// String is the name and, when the server gives one, the version: "FerretDB v1.24.2".
func (e Engine) String() string {
	if e.Version == "" || e.Version == "unknown" {
		return e.Name
	}
	return e.Name + " " + e.Version
}
