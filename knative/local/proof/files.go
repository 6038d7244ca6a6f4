package proof

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
)

// Databases are the lungo files of a stopped system (DATA/db/<function>.bson), read only:
// collections by "<function>.<collection>", each a list of documents.
type Databases map[string][]bson.M

// ReadDatabases reads every lungo file under dir. lungo writes a file atomically (a new file
// renamed over the old one), so a stopped system's files are whole.
func ReadDatabases(dir string) (Databases, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.bson"))
	if err != nil {
		return nil, err
	}
	dbs := Databases{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		// lungo's file format: {namespaces: {"<db>.<collection>": {documents: [...], indexes: {...}}}}.
		var file struct {
			Namespaces map[string]struct {
				Documents []bson.M `bson:"documents"`
			} `bson:"namespaces"`
		}
		if err := bson.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for ns, c := range file.Namespaces {
			dbs[ns] = c.Documents
		}
	}
	return dbs, nil
}

// ByID indexes a collection by its _id in hex.
func (d Databases) ByID(ns string) map[string]bson.M {
	out := map[string]bson.M{}
	for _, doc := range d[ns] {
		out[idOf(doc["_id"])] = doc
	}
	return out
}

// Names lists the collections.
func (d Databases) Names() string {
	var names []string
	for ns, docs := range d {
		names = append(names, fmt.Sprintf("%s (%d)", ns, len(docs)))
	}
	return strings.Join(names, ", ")
}

func idOf(v any) string {
	if h, ok := v.(interface{ Hex() string }); ok {
		return h.Hex()
	}
	return fmt.Sprint(v)
}

// num reads a BSON number field as int64.
func num(v any) int64 {
	switch n := v.(type) {
	case int32:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return -1
}

// find is the collection of the function whose documents have every key.
func (d Databases) find(function string, keys ...string) (string, bool) {
	for ns, docs := range d {
		if !strings.HasPrefix(ns, function+".") || len(docs) == 0 {
			continue
		}
		all := true
		for _, k := range keys {
			_, ok := docs[0][k]
			all = all && ok
		}
		if all {
			return ns, true
		}
	}
	return "", false
}

// checkFiles: what the invariants say about the functions' own databases, read after the
// runtime stopped: every replica at its source's version, no event left in an outbox,
// every cancellation recorded by an unsold ticket, one sent email per complete order.
func checkFiles(d Databases, fail func(string, ...any)) {
	need := func(function string, keys ...string) map[string]bson.M {
		ns, ok := d.find(function, keys...)
		if !ok {
			fail("no %s collection with %v in the databases: %s", function, keys, d.Names())
			return nil
		}
		return d.ByID(ns)
	}
	tickets := need("tickets", "cancelledOrders", "sold")
	replicas := need("orders", "reservedBy")
	orders := need("orders", "status", "ticket")
	paymentOrders := need("payments", "expiresAt", "price")
	emails := need("emails", "subject", "status")

	for id, t := range tickets {
		r, ok := replicas[id]
		switch {
		case !ok:
			fail("ticket %s: orders has no replica", id)
		case num(r["version"]) != num(t["version"]) || r["title"] != t["title"] || num(r["price"]) != num(t["price"]):
			fail("ticket %s: orders' replica v%d %v %v, tickets has v%d %v %v", id, num(r["version"]), r["title"], r["price"], num(t["version"]), t["title"], t["price"])
		}
	}
	for id, o := range orders {
		status := o["status"]
		if p, ok := paymentOrders[id]; !ok {
			fail("order %s: payments has no replica", id)
		} else if num(p["version"]) != num(o["version"]) || p["status"] != status {
			fail("order %s: payments' replica v%d %v, orders has v%d %v", id, num(p["version"]), p["status"], num(o["version"]), status)
		}
		ticketID := fmt.Sprint(o["ticket"].(bson.M)["id"])
		t := tickets[ticketID]
		switch status {
		case "cancelled":
			// A sold ticket ignores later cancels; any other must have recorded it.
			if t != nil && t["sold"] != true && !strings.Contains(fmt.Sprint(t["cancelledOrders"]), id) {
				fail("order %s cancelled, ticket %s never heard of it", id, ticketID)
			}
			if e, ok := emails[id]; ok {
				fail("order %s cancelled, emails has a record %v", id, e["status"])
			}
		case "complete":
			if t == nil || t["sold"] != true || t["orderId"] != id {
				fail("order %s complete, ticket %s in tickets: %v", id, ticketID, t)
			}
			if e, ok := emails[id]; !ok || e["status"] != "sent" {
				fail("order %s complete, its email: %v", id, e)
			}
		}
	}
	for ns, docs := range d {
		for _, doc := range docs {
			if box, ok := doc["outbox"].(bson.M); ok && len(box) > 0 {
				fail("%s %s: events left in its outbox: %v", ns, idOf(doc["_id"]), box)
			}
		}
	}
}
