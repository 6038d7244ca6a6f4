package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// story is tickit's user story against the function processes, every event between them
// going through Knative's Broker. REST calls go through the client function's API
// gateway when the manifests have it (as a browser's would), else straight to each
// function (the ingress is Serving's, which does not run here).
type story struct {
	urls   map[string]string
	proxy  string
	logs   string
	dead   *receiver
	probe  *receiver
	c      *cluster
	seller string
	buyer  string
	buyerE string
}

type part struct {
	name string
	run  func(ctx context.Context) error
}

func (s *story) parts() []part {
	return []part{
		{"story: sign up a seller and a buyer (auth)", s.signUp},
		{"story: sell, buy, pay, order complete, ticket sold, email recorded", s.happyPath},
		{"story: cancel an order, its ticket is released; a late payment is rejected by a reply event", s.cancelPath},
		{"story: an unpaid order expires (PingSource tick -> expiration -> orders -> tickets)", s.expiryPath},
	}
}

type response struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func (s *story) call(ctx context.Context, method, fn, path string, body any, token string) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	base := s.urls[fn]
	if gw, ok := s.urls["client"]; ok {
		base = gw
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, raw: string(b), header: res.Header}
	_ = json.Unmarshal(b, &r.body)
	return r, nil
}

// until calls f until it reports done; an error stops it.
func until(ctx context.Context, what string, timeout time.Duration, f func() (bool, string, error)) (time.Duration, error) {
	t := time.Now()
	last := ""
	err := poll(ctx, what, timeout, func() error {
		done, why, err := f()
		if err != nil {
			return err
		}
		if !done {
			last = why
			return fmt.Errorf("%s", why)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("%w (last: %s)", err, last)
	}
	return time.Since(t), nil
}

func (s *story) signUp(ctx context.Context) error {
	if gw, ok := s.urls["client"]; ok {
		// /healthz, not the page: a fresh clone has not built the UI (make ui), and the
		// API calls that follow are what goes through the gateway.
		res, err := http.Get(gw + "/healthz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("client GET /healthz: %d", res.StatusCode)
		}
		fmt.Println("   REST calls go through the client's gateway (to each function by its cluster name)")
	}
	suffix := randomKey()[:6]
	for _, who := range []*string{&s.seller, &s.buyer} {
		email := fmt.Sprintf("%s-%s@tickit.dev", map[bool]string{true: "seller", false: "buyer"}[who == &s.seller], suffix)
		r, err := s.call(ctx, http.MethodPost, "auth", "/api/users/signup", map[string]string{"email": email, "password": "correct horse battery"}, "")
		if err != nil {
			return err
		}
		if r.status != http.StatusCreated {
			return fmt.Errorf("signup %s: %d %s", email, r.status, r.raw)
		}
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == "session" {
				*who = c.Value
			}
		}
		if *who == "" {
			return fmt.Errorf("signup %s: no session cookie", email)
		}
		if who == &s.buyer {
			s.buyerE = email
		}
	}
	return nil
}

// sell lists a ticket as the seller.
func (s *story) sell(ctx context.Context, title string) (string, error) {
	r, err := s.call(ctx, http.MethodPost, "tickets", "/api/tickets", map[string]any{"title": title, "price": 20}, s.seller)
	if err != nil {
		return "", err
	}
	if r.status != http.StatusCreated {
		return "", fmt.Errorf("sell: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string), nil
}

// order buys the ticket as the buyer, retrying while orders has no replica of it yet
// (ticket.created is on its way through the Broker).
func (s *story) order(ctx context.Context, ticket string) (string, error) {
	var id string
	d, err := until(ctx, "order of ticket "+ticket, 30*time.Second, func() (bool, string, error) {
		r, err := s.call(ctx, http.MethodPost, "orders", "/api/orders", map[string]string{"ticketId": ticket}, s.buyer)
		switch {
		case err != nil:
			return false, "", err
		case r.status == http.StatusNotFound:
			return false, "no replica yet", nil
		case r.status != http.StatusCreated:
			return false, "", fmt.Errorf("order: %d %s", r.status, r.raw)
		}
		id = r.body["id"].(string)
		return true, "", nil
	})
	if err == nil {
		fmt.Printf("   ticket.created reached orders' replica within %s; order %s\n", d.Round(time.Millisecond), id)
	}
	return id, err
}

// ticket reads a ticket from tickets.
func (s *story) ticket(ctx context.Context, id string) (map[string]any, error) {
	r, err := s.call(ctx, http.MethodGet, "tickets", "/api/tickets/"+id, nil, "")
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("get ticket: %d %s", r.status, r.raw)
	}
	return r.body, nil
}

func (s *story) waitTicket(ctx context.Context, id, what string, ok func(t map[string]any) bool) error {
	d, err := until(ctx, "ticket "+what, 30*time.Second, func() (bool, string, error) {
		t, err := s.ticket(ctx, id)
		if err != nil {
			return false, "", err
		}
		return ok(t), fmt.Sprintf("ticket %v", t), nil
	})
	if err == nil {
		fmt.Printf("   ticket %s within %s\n", what, d.Round(time.Millisecond))
	}
	return err
}

func (s *story) waitOrder(ctx context.Context, id, status string, timeout time.Duration) error {
	d, err := until(ctx, "order "+status, timeout, func() (bool, string, error) {
		r, err := s.call(ctx, http.MethodGet, "orders", "/api/orders/"+id, nil, s.buyer)
		if err != nil {
			return false, "", err
		}
		if r.status != http.StatusOK {
			return false, "", fmt.Errorf("get order: %d %s", r.status, r.raw)
		}
		return r.body["status"] == status, fmt.Sprintf("order %v", r.body["status"]), nil
	})
	if err == nil {
		fmt.Printf("   order %s within %s\n", status, d.Round(time.Millisecond))
	}
	return err
}

func (s *story) happyPath(ctx context.Context) error {
	ticket, err := s.sell(ctx, "Conformance concert")
	if err != nil {
		return err
	}
	order, err := s.order(ctx, ticket)
	if err != nil {
		return err
	}
	// payments learns of the order from order.created.
	d, err := until(ctx, "payment", 30*time.Second, func() (bool, string, error) {
		r, err := s.call(ctx, http.MethodPost, "payments", "/api/payments", map[string]string{"orderId": order, "token": "pm_card_visa"}, s.buyer)
		switch {
		case err != nil:
			return false, "", err
		case r.status == http.StatusNotFound:
			return false, "payments has no replica of the order yet", nil
		case r.status != http.StatusCreated:
			return false, "", fmt.Errorf("pay: %d %s", r.status, r.raw)
		}
		return true, "", nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("   order.created reached payments within %s; paid through stripe-mock\n", d.Round(time.Millisecond))
	if err := s.waitOrder(ctx, order, "complete", 30*time.Second); err != nil {
		return err
	}
	if err := s.waitTicket(ctx, ticket, "sold to the order", func(t map[string]any) bool {
		return t["sold"] == true && t["orderId"] == order
	}); err != nil {
		return err
	}
	_, err = until(ctx, "email recorded", 30*time.Second, func() (bool, string, error) {
		b, err := os.ReadFile(filepath.Join(s.logs, "fn-emails.log"))
		if err != nil {
			return false, "", err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "not sent: no SENDGRID_API_KEY") && strings.Contains(line, s.buyerE) {
				return true, "", nil
			}
		}
		return false, "no email line for " + s.buyerE + " in fn-emails.log", nil
	})
	if err == nil {
		fmt.Printf("   emails: order.completed recorded an email to %s (not sent: no SENDGRID_API_KEY)\n", s.buyerE)
	}
	return err
}

func (s *story) cancelPath(ctx context.Context) error {
	ticket, err := s.sell(ctx, "Conformance cancelled")
	if err != nil {
		return err
	}
	order, err := s.order(ctx, ticket)
	if err != nil {
		return err
	}
	if err := s.waitTicket(ctx, ticket, "reserved by the order", func(t map[string]any) bool { return t["orderId"] == order }); err != nil {
		return err
	}
	r, err := s.call(ctx, http.MethodDelete, "orders", "/api/orders/"+order, nil, s.buyer)
	if err != nil {
		return err
	}
	if r.status != http.StatusNoContent {
		return fmt.Errorf("cancel: %d %s", r.status, r.raw)
	}
	if err := s.waitTicket(ctx, ticket, "released", func(t map[string]any) bool { return t["orderId"] == nil }); err != nil {
		return err
	}
	_, err = until(ctx, "payment of the cancelled order refused", 30*time.Second, func() (bool, string, error) {
		r, err := s.call(ctx, http.MethodPost, "payments", "/api/payments", map[string]string{"orderId": order, "token": "pm_card_visa"}, s.buyer)
		if err != nil {
			return false, "", err
		}
		switch r.status {
		case http.StatusBadRequest:
			return true, "", nil
		case http.StatusNotFound:
			return false, "payments has no replica yet", nil
		case http.StatusCreated:
			return false, "", fmt.Errorf("a cancelled order was paid: %s", r.raw)
		}
		return false, "", fmt.Errorf("pay cancelled order: %d %s", r.status, r.raw)
	})
	if err != nil {
		return err
	}
	fmt.Println("   payments refuses the cancelled order (400)")
	return s.lateRejected(ctx, order)
}

// lateRejected sends the payment.created of a payment that raced the cancel: orders
// answers it with payment.rejected as its reply, which Knative's filter puts back into
// the Broker. A Trigger of the harness's own sees it arrive.
func (s *story) lateRejected(ctx context.Context, order string) error {
	tr := probeTrigger("conformance-payment-rejected", "dev.tickit.payment.rejected")
	if _, err := s.c.apply(ctx, tr); err != nil {
		return err
	}
	if err := s.c.allReady(ctx, []*objectRef{{obj: tr}}); err != nil {
		return err
	}
	payment := randomKey()[:24]
	data := fmt.Sprintf(`{"id":%q,"orderId":%q,"stripeId":"pi_conformance","amount":2000,"currency":"usd"}`, payment, order)
	if err := sendEvent(ctx, brokerClient(s.proxy), "conformance-late-"+payment, "dev.tickit.payment.created", "application/json", []byte(data)); err != nil {
		return err
	}
	e, ok := s.probe.waitFor(ctx, 30*time.Second, func(e event) bool {
		return e.attrs["type"] == "dev.tickit.payment.rejected" && strings.Contains(string(e.data), payment)
	})
	if !ok {
		return fmt.Errorf("no payment.rejected for payment %s of cancelled order %s within 30 s", payment, order)
	}
	fmt.Printf("   orders replied payment.rejected %s (source %s), back through the Broker\n", e.data, e.attrs["source"])
	return nil
}

func (s *story) expiryPath(ctx context.Context) error {
	ticket, err := s.sell(ctx, "Conformance expired")
	if err != nil {
		return err
	}
	order, err := s.order(ctx, ticket)
	if err != nil {
		return err
	}
	if err := s.waitOrder(ctx, order, "cancelled", time.Minute); err != nil {
		return err
	}
	return s.waitTicket(ctx, ticket, "released after the expiry", func(t map[string]any) bool { return t["orderId"] == nil })
}
