package proof

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// bencher runs the per-route and story measurements of one profile, in order: each step
// leaves the data the next one needs.
type bencher struct {
	*World
	t       *Table
	p       Profile
	users   []string // session tokens
	tickets []Ticket
	orders  []placed
	free    int // tickets nobody ordered
}

type placed struct {
	Order
	token string
}

func (b *bencher) sellers() []string { return b.users[:min(10, len(b.users)/2)] }
func (b *bencher) buyers() []string  { return b.users[len(b.sellers()):] }

// route runs n requests at Concurrency and prints rate, latency and the CPU the function's
// process spent per request.
func (b *bencher) route(name, function string, n int, do func(i int) error) error {
	pid := b.Service(function).PID()
	cpu := CPUTime(pid)
	l := Run(n, Concurrency, do)
	spent := CPUTime(pid) - cpu
	prefix := b.p.Name + ".route." + name
	b.t.Add(prefix+".requests", float64(n), "requests")
	b.t.Add(prefix+".rate", float64(len(l.Latencies))/l.Elapsed.Seconds(), "requests/s")
	b.t.Add(prefix+".p50", Percentile(l.Latencies, 0.5), "ms")
	b.t.Add(prefix+".p99", Percentile(l.Latencies, 0.99), "ms")
	if pid != 0 && pid == b.Service(function).PID() {
		b.t.Add(prefix+".cpu", ms(spent)/float64(n), "ms/request")
	}
	if l.Errors > 0 {
		b.t.Add(prefix+".errors", float64(l.Errors), "requests")
		b.t.Note("%s: first error: %v", prefix, l.FirstErr)
	}
	if len(l.Latencies) == 0 {
		return fmt.Errorf("%s: every request failed: %v", name, l.FirstErr)
	}
	return nil
}

func (b *bencher) signUp() error {
	if err := b.Service("auth").Start(b.ctx()); err != nil {
		return err
	}
	b.users = make([]string, b.p.Users)
	return b.route("signup", "auth", b.p.Users, func(i int) (err error) {
		b.users[i], err = b.SignUp(b.email(i))
		return err
	})
}

func (b *bencher) email(i int) string { return fmt.Sprintf("%s-user%d@example.com", b.p.Name, i) }

func (b *bencher) signIn() error {
	return b.route("signin", "auth", b.p.Users, func(i int) error {
		r, err := b.API("auth", "POST", "/api/users/signin", map[string]string{"email": b.email(i), "password": "correct horse battery"}, "")
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK {
			return fmt.Errorf("sign in: %d %.200s", r.Status, r.Body)
		}
		_, err = sessionToken(r)
		return err
	})
}

func (b *bencher) createTickets() error {
	if err := b.Service("tickets").Start(b.ctx()); err != nil {
		return err
	}
	b.tickets = make([]Ticket, b.p.Tickets)
	sellers := b.sellers()
	err := b.route("create_ticket", "tickets", b.p.Tickets, func(i int) (err error) {
		b.tickets[i], err = b.Sell(sellers[i%len(sellers)], fmt.Sprintf("Ticket %d", i), 10+float64(i%90))
		return err
	})
	b.tickets = slices.DeleteFunc(b.tickets, func(t Ticket) bool { return t.ID == "" })
	return err
}

func (b *bencher) listTickets() error {
	n := max(500, b.p.Users*2)
	if b.p.Wire {
		n = 200
	}
	b.t.Note("%s: list_tickets: GET /api/tickets (first page, default limit) over %d tickets", b.p.Name, len(b.tickets))
	return b.route("list_tickets", "tickets", n, func(int) error {
		r, err := b.API("tickets", "GET", "/api/tickets", nil, "")
		if err == nil && r.Status != http.StatusOK {
			err = fmt.Errorf("list: %d %.200s", r.Status, r.Body)
		}
		return err
	})
}

// healthz: GET /healthz of tickets through the ingress, the cheapest request a function
// answers (no store, no event): its CPU per request is the floor under every route's, what
// one HTTP exchange through the ingress costs the function on this machine.
func (b *bencher) healthz() error {
	return b.route("healthz", "tickets", 2000, func(int) error {
		r, err := b.Internal("tickets", "GET", "/healthz")
		if err == nil && r.Status != http.StatusOK {
			err = fmt.Errorf("healthz: %d %.200s", r.Status, r.Body)
		}
		return err
	})
}

// waitReplicas waits until orders has its replica of every ticket (ticket.created through
// the Broker): the seller ordering their own ticket is 400 once orders knows it, 404 before.
func (b *bencher) waitReplicas() error {
	began := time.Now()
	sellers := b.sellers()
	seller := map[string]string{}
	for i, tk := range b.tickets {
		seller[tk.ID] = sellers[i%len(sellers)]
	}
	pending := slices.Clone(b.tickets)
	err := Eventually(10*time.Minute, "orders has every ticket", func() (bool, error) {
		known := make([]bool, len(pending))
		l := Run(len(pending), Concurrency, func(i int) error {
			r, err := b.API("orders", "POST", "/api/orders", map[string]string{"ticketId": pending[i].ID}, seller[pending[i].ID])
			known[i] = err == nil && r.Status != http.StatusNotFound
			return err
		})
		if l.FirstErr != nil {
			return false, l.FirstErr
		}
		var still []Ticket
		for i, tk := range pending {
			if !known[i] {
				still = append(still, tk)
			}
		}
		pending = still
		return len(pending) == 0, nil
	})
	b.t.Add(b.p.Name+".replicas.ready", time.Since(began).Seconds(), "s")
	return err
}

// stories: the full purchase, 5 at a time: order -> reserved in tickets -> paid -> complete
// -> the confirmation email recorded.
func (b *bencher) stories() error {
	var mu sync.Mutex
	stages := map[string][]time.Duration{}
	buyers := b.buyers()
	l := Run(b.p.Stories, 5, func(i int) error {
		tk, token := b.tickets[i], buyers[i%len(buyers)]
		began := time.Now()
		o, err := b.order(token, tk.ID)
		if err != nil {
			return err
		}
		ordered := time.Since(began)
		if err := Eventually(time.Minute, "reserved in tickets", func() (bool, error) {
			var t Ticket
			r, err := b.API("tickets", "GET", "/api/tickets/"+tk.ID, nil, "")
			if err == nil {
				err = r.Decode(&t)
			}
			return t.OrderID == o.ID, err
		}); err != nil {
			return err
		}
		reserved := time.Since(began)
		if err := b.payOrder(token, o.ID); err != nil {
			return err
		}
		paid := time.Since(began)
		if err := Eventually(time.Minute, "order complete", func() (bool, error) {
			got, err := b.getOrder(token, o.ID)
			return got.Status == "complete", err
		}); err != nil {
			return err
		}
		complete := time.Since(began)
		if err := Eventually(time.Minute, "email recorded", func() (bool, error) { return b.Mail.About(o.ID) > 0, nil }); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for k, d := range map[string]time.Duration{"ordered": ordered, "reserved": reserved, "paid": paid, "complete": complete, "emailed": time.Since(began)} {
			stages[k] = append(stages[k], d)
		}
		return nil
	})
	b.t.Note("%s: story: 5 buyers at a time; each stage is the time since the order request was sent", b.p.Name)
	for _, k := range []string{"ordered", "reserved", "paid", "complete", "emailed"} {
		slices.Sort(stages[k])
		b.t.Add(b.p.Name+".story."+k+".p50", Percentile(stages[k], 0.5), "ms")
		b.t.Add(b.p.Name+".story."+k+".p99", Percentile(stages[k], 0.99), "ms")
	}
	if l.Errors > 0 {
		b.t.Add(b.p.Name+".story.errors", float64(l.Errors), "stories")
		b.t.Note("%s: story: first error: %v", b.p.Name, l.FirstErr)
	}
	return nil
}

// order creates an order, retrying while orders does not know the ticket yet.
func (w *World) order(token, ticketID string) (Order, error) {
	var o Order
	var r Response
	err := Eventually(time.Minute, "orders knows the ticket", func() (bool, error) {
		var err error
		r, err = w.API("orders", "POST", "/api/orders", map[string]string{"ticketId": ticketID}, token)
		return err != nil || r.Status != http.StatusNotFound, err
	})
	if err != nil {
		return o, err
	}
	if r.Status != http.StatusCreated {
		return o, fmt.Errorf("order %s: %d %.200s", ticketID, r.Status, r.Body)
	}
	return o, r.Decode(&o)
}

var errPaymentRefused = errors.New("payment refused")

// payOrder pays with Stripe's test card, retrying while payments does not know the order yet.
func (w *World) payOrder(token, orderID string) error {
	var r Response
	err := Eventually(time.Minute, "payments knows the order", func() (bool, error) {
		var err error
		r, err = w.API("payments", "POST", "/api/payments", map[string]string{"orderId": orderID, "token": "pm_card_visa"}, token)
		// 202: authorized, orders not decided yet; asking again with the same card waits for it.
		return err != nil || r.Status != http.StatusNotFound && r.Status != http.StatusAccepted, err
	})
	switch {
	case err != nil:
		return err
	case r.Status == http.StatusBadRequest:
		return fmt.Errorf("%w: %.200s", errPaymentRefused, r.Body)
	case r.Status != http.StatusCreated:
		return fmt.Errorf("pay %s: %d %.200s", orderID, r.Status, r.Body)
	}
	return nil
}

func (w *World) getOrder(token, id string) (Order, error) {
	var o Order
	r, err := w.API("orders", "GET", "/api/orders/"+id, nil, token)
	if err != nil {
		return o, err
	}
	if r.Status != http.StatusOK {
		return o, fmt.Errorf("order %s: %d %.200s", id, r.Status, r.Body)
	}
	return o, r.Decode(&o)
}

func (b *bencher) createOrders() error {
	rest := b.tickets[b.p.Stories:min(len(b.tickets), b.p.Stories+b.p.Paid+b.p.Expiring)]
	buyers := b.buyers()
	b.orders = make([]placed, len(rest))
	err := b.route("create_order", "orders", len(rest), func(i int) error {
		token := buyers[i%len(buyers)]
		r, err := b.API("orders", "POST", "/api/orders", map[string]string{"ticketId": rest[i].ID}, token)
		if err != nil {
			return err
		}
		if r.Status != http.StatusCreated {
			return fmt.Errorf("order: %d %.200s", r.Status, r.Body)
		}
		b.orders[i].token = token
		return r.Decode(&b.orders[i].Order)
	})
	b.orders = slices.DeleteFunc(b.orders, func(o placed) bool { return o.ID == "" })
	b.free = len(b.tickets) - b.p.Stories - len(b.orders)
	return err
}

// pay pays for the last orders created (the furthest from expiring).
func (b *bencher) pay() error {
	if err := b.Service("payments").Start(b.ctx()); err != nil {
		return err
	}
	paid := b.orders[max(0, len(b.orders)-b.p.Paid):]
	b.orders = b.orders[:len(b.orders)-len(paid)]
	return b.route("pay", "payments", len(paid), func(i int) error {
		return b.payOrder(paid[i].token, paid[i].ID)
	})
}

// expire: every order left is due; one PingSource tick (sent here, the PingSource waits a
// day) expires them all. Measured from the tick until every one is cancelled in orders and
// its ticket is listed again by tickets.
func (b *bencher) expire() error {
	if len(b.orders) == 0 {
		return nil
	}
	last := b.orders[0].ExpiresAt
	for _, o := range b.orders {
		if o.ExpiresAt.After(last) {
			last = o.ExpiresAt
		}
	}
	// Every order reserves its ticket first, so that "listed again" means something; an
	// order that is due before tickets saw it leaves its ticket listed, which the note says.
	if err := Eventually(time.Until(last), "tickets reserved for every order", func() (bool, error) {
		n, err := b.listed()
		return n <= b.free, err
	}); err != nil {
		b.t.Note("%s: expiration: %v (some orders were due before tickets saw them)", b.p.Name, err)
	}
	if wait := time.Until(last) + time.Second; wait > 0 {
		b.t.Note("%s: expiration: waiting %v for the last of %d orders to be due", b.p.Name, wait.Round(time.Second), len(b.orders))
		time.Sleep(wait)
	}
	if err := b.Service("expiration").Start(b.ctx()); err != nil {
		return err
	}
	// The Broker's feed says when orders took each expiration.completed (the order is
	// cancelled) and tickets each order.cancelled (the ticket is listed again).
	records, stop, err := b.Follow()
	if err != nil {
		return err
	}
	defer stop()
	due := map[string]bool{}
	for _, o := range b.orders {
		due[o.ID] = true
	}
	began := time.Now()
	if err := b.Publish(Ping(fmt.Sprintf("proof-tick-%d", began.UnixNano()))); err != nil {
		return err
	}
	done := map[string]map[string]bool{"orders-expiration-completed": {}, "tickets-order-cancelled": {}}
	at := map[string]time.Duration{}
	timeout := time.After(30 * time.Minute)
	for len(at) < len(done) {
		select {
		case r, ok := <-records:
			if !ok {
				return errors.New("the Broker's feed ended")
			}
			seen, ok := done[r.Trigger]
			if !ok || r.Stage != "delivered" || !due[r.Event.Subject] {
				continue
			}
			seen[r.Event.Subject] = true
			if len(seen) == len(due) {
				at[r.Trigger] = time.Since(began)
			}
		case <-timeout:
			return fmt.Errorf("expiration: after 30 minutes, orders took %d and tickets %d of %d", len(done["orders-expiration-completed"]), len(done["tickets-order-cancelled"]), len(due))
		}
	}
	b.t.Add(b.p.Name+".expiration.orders", float64(len(b.orders)), "orders")
	b.t.Add(b.p.Name+".expiration.cancelled", at["orders-expiration-completed"].Seconds(), "s")
	b.t.Add(b.p.Name+".expiration.listed_again", at["tickets-order-cancelled"].Seconds(), "s")
	b.t.Add(b.p.Name+".expiration.rate", float64(len(b.orders))/at["tickets-order-cancelled"].Seconds(), "orders/s")
	// The list agrees: every expired order's ticket is listed again.
	n, err := b.listed()
	if err != nil {
		return err
	}
	if n < len(b.orders)+b.free {
		b.t.Note("%s: expiration: %d tickets listed after the expiry, want %d", b.p.Name, n, len(b.orders)+b.free)
	}
	return nil
}

// listed counts the tickets in the public list, page by page.
func (w *World) listed() (int, error) {
	n, after := 0, ""
	for {
		path := "/api/tickets?limit=200"
		if after != "" {
			path += "&after=" + after
		}
		r, err := w.API("tickets", "GET", path, nil, "")
		if err != nil {
			return 0, err
		}
		var page []Ticket
		if err := r.Decode(&page); err != nil {
			return 0, err
		}
		n += len(page)
		if len(page) < 200 {
			return n, nil
		}
		after = page[len(page)-1].ID
	}
}
