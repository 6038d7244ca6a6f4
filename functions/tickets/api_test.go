package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestCreateTicketStoresItAndPublishesTicketCreated(t *testing.T) {
	testenv.OnEachStore(t, testCreateTicketStoresItAndPublishesTicketCreated)
}

func testCreateTicketStoresItAndPublishesTicketCreated(t *testing.T) {
	// Arrange
	e := newEnv(t)

	// Act
	r := testenv.Call(t, http.MethodPost, e.url+"/api/tickets", `{"title":"  Concert  ","price":19.99}`, e.seller.Token)

	// Assert
	if r.Status != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", r.Status, r.Body)
	}
	if !strings.Contains(string(r.Body), `"price":19.99`) {
		t.Errorf("body %s does not show the price as the decimal 19.99", r.Body)
	}
	var tk ticketJSON
	r.JSON(t, &tk)
	want := ticketJSON{ID: tk.ID, Title: "Concert", Price: 1999, UserID: e.seller.ID, Version: 0}
	if tk != want || !events.IsID(tk.ID) {
		t.Fatalf("created %+v, want %+v with a 24-hex id", tk, want)
	}
	if got := e.get(tk.ID); got != tk {
		t.Fatalf("GET returned %+v, want %+v", got, tk)
	}
	evs := e.sink.WaitFor(t, events.TypeTicketCreated, 1)
	p, err := events.Decode[events.TicketCreated](evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if wantEv := (events.TicketCreated{ID: tk.ID, Version: 0, Title: "Concert", Price: 1999, UserID: e.seller.ID}); p != wantEv {
		t.Fatalf("ticket.created %+v, want %+v", p, wantEv)
	}
	if evs[0].Subject() != tk.ID || evs[0].Source() != "/tickit/tickets" {
		t.Errorf("ticket.created subject %q source %q, want the ticket id and /tickit/tickets", evs[0].Subject(), evs[0].Source())
	}
}

func TestCreateTicketRequiresSignIn(t *testing.T) {
	e := newEnv(t)
	r := testenv.Call(t, http.MethodPost, e.url+"/api/tickets", `{"title":"Concert","price":10}`, "")
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", r.Status, r.Body)
	}
	if n := len(e.list("")); n != 0 {
		t.Fatalf("an anonymous POST created %d tickets", n)
	}
}

// badBodies are the invalid bodies of POST and PUT, with the field each must be blamed on.
var badBodies = []struct {
	name, body, field string
	status            int
}{
	{"missing title", `{"price":10}`, "title", 400},
	{"blank title", `{"title":"   ","price":10}`, "title", 400},
	{"title of 201 characters", `{"title":"` + strings.Repeat("é", 201) + `","price":10}`, "title", 400},
	{"title not a string", `{"title":5,"price":10}`, "title", 400},
	{"missing price", `{"title":"Concert"}`, "price", 400},
	{"null price", `{"title":"Concert","price":null}`, "price", 400},
	{"price as a string", `{"title":"Concert","price":"10"}`, "price", 400},
	{"price as a boolean", `{"title":"Concert","price":true}`, "price", 400},
	{"zero price", `{"title":"Concert","price":0}`, "price", 400},
	{"negative price", `{"title":"Concert","price":-5}`, "price", 400},
	{"three decimals", `{"title":"Concert","price":10.001}`, "price", 400},
	{"above 1,000,000", `{"title":"Concert","price":1000000.01}`, "price", 400},
	// Stripe charges usd from 0.50 to 999,999.99 (events.MinPrice, events.MaxPrice): a price
	// outside them could be reserved but never paid.
	{"1,000,000: more than Stripe charges", `{"title":"Concert","price":1000000}`, "price", 400},
	{"0.49: less than Stripe charges", `{"title":"Concert","price":0.49}`, "price", 400},
	{"0.01: less than Stripe charges", `{"title":"Concert","price":0.01}`, "price", 400},
	{"huge exponent", `{"title":"Concert","price":1e999999}`, "price", 400},
	{"unknown field", `{"title":"Concert","price":10,"color":"red"}`, "color", 400},
	{"not JSON", `{"title":`, "", 400},
	{"an array", `[]`, "", 400},
}

func TestCreateTicketRejectsBadBodiesNamingTheField(t *testing.T) {
	e := newEnv(t)
	for _, tc := range badBodies {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.Call(t, http.MethodPost, e.url+"/api/tickets", tc.body, e.seller.Token)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if errs := r.Errors(t); errs.Errors[0].Field != tc.field {
				t.Fatalf("error %+v, want it on field %q", errs.Errors, tc.field)
			}
		})
	}
	if n := len(e.list("")); n != 0 {
		t.Fatalf("invalid bodies created %d tickets", n)
	}
}

func TestCreateTicketListsEveryBadField(t *testing.T) {
	e := newEnv(t)
	r := testenv.Call(t, http.MethodPost, e.url+"/api/tickets", `{"title":"","price":-1}`, e.seller.Token)
	errs := r.Errors(t).Errors
	if r.Status != http.StatusBadRequest || len(errs) != 2 || errs[0].Field != "title" || errs[1].Field != "price" {
		t.Fatalf("status %d errors %+v, want 400 on title and price", r.Status, errs)
	}
}

func TestCreateTicketAcceptsTheLimits(t *testing.T) {
	e := newEnv(t)
	for body, want := range map[string]events.Price{
		`{"title":"` + strings.Repeat("é", 200) + `","price":0.5}`: 50,
		`{"title":"Top","price":999999.99}`:                        99999999,
		`{"title":"Exp","price":1e2}`:                              10000,
		`{"title":"Zeros","price":10.100}`:                         1010,
	} {
		r := testenv.Call(t, http.MethodPost, e.url+"/api/tickets", body, e.seller.Token)
		var tk ticketJSON
		r.JSON(t, &tk)
		if r.Status != http.StatusCreated || tk.Price != want {
			t.Errorf("%s: status %d price %d cents, want 201 and %d: %s", body, r.Status, tk.Price, want, r.Body)
		}
	}
}

func TestCreateTicketNeedsJSONContentType(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/api/tickets", strings.NewReader(`{"title":"Concert","price":10}`))
	req.Header.Set("Authorization", "Bearer "+e.seller.Token)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := testenv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("status %d, want 415", resp.StatusCode)
	}
}

func TestShowTicket(t *testing.T) {
	testenv.OnEachStore(t, testShowTicket)
}

func testShowTicket(t *testing.T) {
	e := newEnv(t)
	tk, order := e.reserved()

	t.Run("a reserved ticket shows its order", func(t *testing.T) {
		if got := e.get(tk.ID); got.OrderID != order {
			t.Fatalf("got %s, want orderId %s", describe(got), order)
		}
	})
	t.Run("malformed id is 400", func(t *testing.T) {
		for _, id := range []string{"nope", strings.ToUpper(tk.ID), tk.ID + "0"} {
			r := testenv.Call(t, http.MethodGet, e.url+"/api/tickets/"+id, nil, "")
			if r.Status != http.StatusBadRequest || r.Errors(t).Errors[0].Field != "id" {
				t.Fatalf("GET %s: status %d, want 400 on id: %s", id, r.Status, r.Body)
			}
		}
	})
	t.Run("unknown id is 404", func(t *testing.T) {
		r := testenv.Call(t, http.MethodGet, e.url+"/api/tickets/"+newID(), nil, "")
		if r.Status != http.StatusNotFound {
			t.Fatalf("status %d, want 404: %s", r.Status, r.Body)
		}
		r.Errors(t)
	})
}

func TestListingShowsFreeTicketsNewestFirst(t *testing.T) {
	testenv.OnEachStore(t, testListingShowsFreeTicketsNewestFirst)
}

func testListingShowsFreeTicketsNewestFirst(t *testing.T) {
	// Arrange: five tickets; one reserved, one sold, one reserved and then released.
	e := newEnv(t)
	var tks []ticketJSON
	for _, title := range []string{"a", "b", "c", "d", "e"} {
		tks = append(tks, e.create(title, 10))
	}
	later := e.clock.Now().Add(15 * time.Minute)
	e.deliver(orderCreatedAt(newID(), tks[1], later))
	e.deliver(orderCompleted(newID(), tks[2].ID))
	released := newID()
	e.deliver(orderCreatedAt(released, tks[3], later))
	e.deliver(orderCancelled(released, tks[3].ID))

	// Act
	list := e.list("")

	// Assert
	var titles []string
	for _, tk := range list {
		titles = append(titles, tk.Title)
	}
	if want := []string{"e", "d", "a"}; !slices.Equal(titles, want) {
		t.Fatalf("listing %v, want %v (no reserved or sold ticket, newest first)", titles, want)
	}
}

func TestListingPagesWithAfter(t *testing.T) {
	testenv.OnEachStore(t, testListingPagesWithAfter)
}

func testListingPagesWithAfter(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for range 7 {
		ids = append(ids, e.create("t", 10).ID)
	}
	slices.Reverse(ids) // newest first

	var got []string
	after := ""
	for page := 0; ; page++ {
		q := "?limit=3"
		if after != "" {
			q += "&after=" + after
		}
		list := e.list(q)
		if len(list) == 0 {
			break
		}
		if len(list) > 3 || page > 3 {
			t.Fatalf("page %d has %d tickets (limit 3)", page, len(list))
		}
		for _, tk := range list {
			got = append(got, tk.ID)
		}
		after = list[len(list)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("pages gave %v, want every ticket once, newest first: %v", got, ids)
	}
}

func TestListingLimits(t *testing.T) {
	testenv.OnEachStore(t, testListingLimits)
}

func testListingLimits(t *testing.T) {
	e := newEnv(t)
	for range DefaultLimit + 1 {
		e.create("t", 10)
	}
	if n := len(e.list("")); n != DefaultLimit {
		t.Errorf("default page has %d tickets, want %d", n, DefaultLimit)
	}
	if n := len(e.list("?limit=200")); n != DefaultLimit+1 {
		t.Errorf("limit=200 gave %d tickets, want all %d", n, DefaultLimit+1)
	}
	if list := e.list("?after=000000000000000000000000"); len(list) != 0 {
		t.Errorf("after the smallest id gave %d tickets, want none", len(list))
	}
}

func TestListingRejectsBadPaging(t *testing.T) {
	e := newEnv(t)
	for q, field := range map[string]string{
		"?limit=0": "limit", "?limit=201": "limit", "?limit=-1": "limit", "?limit=ten": "limit", "?limit=1.5": "limit",
		"?after=xyz": "after", "?after=" + strings.Repeat("G", 24): "after",
	} {
		r := testenv.Call(t, http.MethodGet, e.url+"/api/tickets"+q, nil, "")
		if r.Status != http.StatusBadRequest || r.Errors(t).Errors[0].Field != field {
			t.Errorf("%s: status %d %s, want 400 on %s", q, r.Status, r.Body, field)
		}
	}
}

func TestListingIsAnEmptyArrayWhenNothingIsForSale(t *testing.T) {
	e := newEnv(t)
	r := testenv.Call(t, http.MethodGet, e.url+"/api/tickets", nil, "")
	if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != "[]" {
		t.Fatalf("status %d body %s, want 200 []", r.Status, r.Body)
	}
}

func TestUpdateTicketBumpsTheVersionAndPublishesTicketUpdated(t *testing.T) {
	testenv.OnEachStore(t, testUpdateTicketBumpsTheVersionAndPublishesTicketUpdated)
}

func testUpdateTicketBumpsTheVersionAndPublishesTicketUpdated(t *testing.T) {
	e := newEnv(t)
	tk := e.create("Concert", 10)

	for i, body := range []string{`{"title":" Opera ","price":25.5}`, `{"title":"Ballet","price":30}`} {
		r := testenv.Call(t, http.MethodPut, e.url+"/api/tickets/"+tk.ID, body, e.seller.Token)
		if r.Status != http.StatusOK {
			t.Fatalf("PUT %s: status %d, want 200: %s", body, r.Status, r.Body)
		}
		var got ticketJSON
		r.JSON(t, &got)
		if got.Version != int64(i+1) {
			t.Fatalf("after %d edits version is %d", i+1, got.Version)
		}
		if i == 0 && (got.Title != "Opera" || got.Price != 2550) {
			t.Fatalf("edited to %+v, want Opera at 25.50", got)
		}
	}

	got := e.get(tk.ID)
	want := ticketJSON{ID: tk.ID, Title: "Ballet", Price: 3000, UserID: e.seller.ID, Version: 2}
	if got != want {
		t.Fatalf("ticket %+v, want %+v", got, want)
	}
	e.checkUpdates(got)
	if first := e.updates(tk.ID)[0]; first.Title != "Opera" || first.Price != 2550 || first.OrderID != "" {
		t.Fatalf("ticket.updated v1 %+v, want Opera at 25.50 without order", first)
	}
}

func TestUpdateTicketFailures(t *testing.T) {
	e := newEnv(t)
	tk := e.create("Concert", 10)
	reserved, _ := e.reserved()
	sold := e.create("Sold", 10)
	e.deliver(orderCompleted(newID(), sold.ID))
	other := e.user("other@example.com")
	body := `{"title":"Edited","price":12}`

	cases := []struct {
		name, id, body, token string
		status                int
		message, field        string
	}{
		{"anonymous", tk.ID, body, "", 401, "Not authorized", ""},
		{"another user", tk.ID, body, other.Token, 403, "Forbidden", ""},
		{"malformed id", "123", body, e.seller.Token, 400, "Malformed ticket id", "id"},
		{"unknown ticket", newID(), body, e.seller.Token, 404, "Not Found", ""},
		{"reserved ticket", reserved.ID, body, e.seller.Token, 400, "Cannot edit a reserved ticket", ""},
		{"sold ticket", sold.ID, body, e.seller.Token, 400, "Cannot edit a reserved ticket", ""},
	}
	for _, tc := range badBodies {
		cases = append(cases, struct {
			name, id, body, token string
			status                int
			message, field        string
		}{"body: " + tc.name, tk.ID, tc.body, e.seller.Token, tc.status, "", tc.field})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.Call(t, http.MethodPut, e.url+"/api/tickets/"+tc.id, tc.body, tc.token)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			fe := r.Errors(t).Errors[0]
			if (tc.message != "" && fe.Message != tc.message) || fe.Field != tc.field {
				t.Fatalf("error %+v, want message %q field %q", fe, tc.message, tc.field)
			}
		})
	}
	for _, id := range []string{tk.ID, reserved.ID, sold.ID} {
		if got := e.get(id); got.Title == "Edited" {
			t.Fatalf("a refused PUT changed ticket %s: %+v", id, got)
		}
	}
	if got := e.get(tk.ID); got.Version != 0 {
		t.Fatalf("refused PUTs moved the version to %d", got.Version)
	}
}
