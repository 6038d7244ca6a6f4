package main

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// Client addresses of the tests (documentation ranges, RFC 5737 and 3849).
const (
	home     = "198.51.100.1"
	attacker = "203.0.113.7"
	other    = "198.51.100.2"
)

// cheapHashes makes argon2id nearly free for the test: these tests count attempts, and 32 MiB
// hashes under -race on a busy machine made them minutes long. Set before any server starts;
// the cleanup runs after the servers' (cleanups run last-in first-out).
func cheapHashes(t *testing.T) {
	old := currentParams
	currentParams = params{time: 1, memory: 64, threads: 1}
	t.Cleanup(func() { currentParams = old })
}

// newEnvLimits serves auth with limits l and its counters on clock, with cheap hashes.
func newEnvLimits(t *testing.T, l limits, clock *testenv.Clock) authEnv {
	t.Helper()
	cheapHashes(t)
	db := testenv.Store(t, database, setup)
	sessions := session.New(testKey, time.Hour, false)
	a := newAPI(db, sessions, testTrusted, l)
	a.throttle.now = clock.Now
	return authEnv{url: testenv.Serve(t, a.function()).URL, db: db, sessions: sessions}
}

// from posts to route as the client at addr reaches auth behind a proxy: in X-Forwarded-For.
func (e authEnv) from(t *testing.T, addr, route, email, password string) testenv.Response {
	t.Helper()
	return postFrom(t, e.url, addr, route, email, password)
}

func postFrom(t *testing.T, url, addr, route, email, password string) testenv.Response {
	t.Helper()
	body := `{"email":"` + email + `","password":"` + password + `"}`
	req, _ := http.NewRequest(http.MethodPost, url+"/api/users/"+route, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	return do(t, req)
}

// want429 checks a throttled answer: the error format and Retry-After in seconds.
func want429(t *testing.T, res testenv.Response, retryAfter string) {
	t.Helper()
	wantError(t, res, http.StatusTooManyRequests, [2]string{"Too many attempts; please try again later", ""})
	if got := res.Header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After %q, want %q", got, retryAfter)
	}
}

func TestFiveWrongPasswordsFromOneClientThrottleThatClientOnThatAccount(t *testing.T) {
	// Arrange
	clock := testenv.NewClock(time.Now())
	env := newEnvLimits(t, defaultLimits, clock)
	env.from(t, home, "signup", "ann@example.com", "correct horse")

	// Act + Assert: five failures are answered as such, the sixth attempt is not tried.
	for i := range 5 {
		wantError(t, env.from(t, attacker, "signin", "ann@example.com", "guess "+string(rune('a'+i))), http.StatusBadRequest, [2]string{"Invalid credentials", ""})
	}
	want429(t, env.from(t, attacker, "signin", "ann@example.com", "guess f"), "900")
	clock.Advance(10 * time.Minute)
	want429(t, env.from(t, attacker, "signin", "ann@example.com", "correct horse"), "300")

	// Ann, from anywhere else, is not locked out.
	if res := env.from(t, other, "signin", "ann@example.com", "correct horse"); res.Status != http.StatusOK {
		t.Fatalf("ann from another client: want 200, got %d %s", res.Status, res.Body)
	}
	// The window ends: the attacker's next guess is checked again.
	clock.Advance(5 * time.Minute)
	wantError(t, env.from(t, attacker, "signin", "ann@example.com", "guess g"), http.StatusBadRequest, [2]string{"Invalid credentials", ""})
}

func TestAnUnknownAccountIsThrottledLikeAKnownOne(t *testing.T) {
	// Arrange
	env := newEnvLimits(t, defaultLimits, testenv.NewClock(time.Now()))

	// Act
	for range 5 {
		env.from(t, attacker, "signin", "nobody@example.com", "guess 1234")
	}

	// Assert: the same 429 as for an account that exists, so it tells nothing.
	want429(t, env.from(t, attacker, "signin", "nobody@example.com", "guess 1234"), "900")
}

func TestARightPasswordClearsItsClientsFailures(t *testing.T) {
	// Arrange
	env := newEnvLimits(t, defaultLimits, testenv.NewClock(time.Now()))
	env.from(t, home, "signup", "ann@example.com", "correct horse")
	for range 4 {
		env.from(t, home, "signin", "ann@example.com", "wrong horse")
	}

	// Act
	res := env.from(t, home, "signin", "ann@example.com", "correct horse")

	// Assert: five more mistakes are allowed again.
	if res.Status != http.StatusOK {
		t.Fatalf("right password after 4 mistakes: want 200, got %d %s", res.Status, res.Body)
	}
	for range 5 {
		wantError(t, env.from(t, home, "signin", "ann@example.com", "wrong horse"), http.StatusBadRequest, [2]string{"Invalid credentials", ""})
	}
	want429(t, env.from(t, home, "signin", "ann@example.com", "wrong horse"), "900")
}

func TestAClientGuessingAcrossAccountsIsThrottled(t *testing.T) {
	// Arrange: 3 failures per client, whatever the account (50 in production).
	l := defaultLimits
	l.client.max = 3
	env := newEnvLimits(t, l, testenv.NewClock(time.Now()))
	env.from(t, home, "signup", "ann@example.com", "correct horse")

	// Act: one guess on each of three accounts.
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		wantError(t, env.from(t, attacker, "signin", email, "password1"), http.StatusBadRequest, [2]string{"Invalid credentials", ""})
	}

	// Assert: a fourth account is not tried; another client is not affected.
	want429(t, env.from(t, attacker, "signin", "ann@example.com", "password1"), "900")
	if res := env.from(t, other, "signin", "ann@example.com", "correct horse"); res.Status != http.StatusOK {
		t.Fatalf("another client: want 200, got %d %s", res.Status, res.Body)
	}
}

func TestClientsGuessingOneAccountNeverLockOutAClientItKnows(t *testing.T) {
	// Arrange: 3 failures per account from clients it does not know (100 in production).
	l := defaultLimits
	l.account.max = 3
	env := newEnvLimits(t, l, testenv.NewClock(time.Now()))
	env.from(t, home, "signup", "ann@example.com", "correct horse")
	if res := env.from(t, home, "signin", "ann@example.com", "correct horse"); res.Status != http.StatusOK {
		t.Fatalf("ann at home: want 200, got %d", res.Status)
	}

	// Act: a botnet, one guess per address.
	for _, addr := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		wantError(t, env.from(t, addr, "signin", "ann@example.com", "password1"), http.StatusBadRequest, [2]string{"Invalid credentials", ""})
	}

	// Assert: a new address is not tried, even with the right password (the price of the
	// rule); ann at home signs in, and home's own mistakes are still counted per pair.
	want429(t, env.from(t, "203.0.113.4", "signin", "ann@example.com", "correct horse"), "900")
	if res := env.from(t, home, "signin", "ann@example.com", "correct horse"); res.Status != http.StatusOK {
		t.Fatalf("ann at home during the attack: want 200, got %d %s", res.Status, res.Body)
	}
}

func TestConcurrentWrongPasswordsOnTwoReplicasNeverPassTheLimit(t *testing.T) {
	// Arrange: two replicas of auth over one database.
	cheapHashes(t)
	db := testenv.Store(t, database, setup)
	sessions := session.New(testKey, time.Hour, false)
	var urls []string
	for range 2 {
		urls = append(urls, testenv.Serve(t, newFunction(db, sessions, testTrusted)).URL)
	}
	postFrom(t, urls[0], home, "signup", "ann@example.com", "correct horse")
	const n = 30
	statuses := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup

	// Act
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = postFrom(t, urls[i%2], attacker, "signin", "ann@example.com", "wrong horse").Status
		})
	}
	close(start)
	testenv.Wait(t, &wg, 5*time.Minute, "the concurrent sign-ins")

	// Assert: exactly the limit's five passwords were checked.
	slices.Sort(statuses)
	want := append(slices.Repeat([]int{http.StatusBadRequest}, 5), slices.Repeat([]int{http.StatusTooManyRequests}, n-5)...)
	if !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want five 400 and %d 429", statuses, n-5)
	}
}

func TestSignUpsThatFindTheEmailTakenAreLimitedPerClient(t *testing.T) {
	// Arrange: 3 taken emails per client (10 in production).
	l := defaultLimits
	l.signUp.max = 3
	env := newEnvLimits(t, l, testenv.NewClock(time.Now()))

	// Act + Assert: accounts created do not count...
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"} {
		if res := env.from(t, attacker, "signup", email, "correct horse"); res.Status != http.StatusCreated {
			t.Fatalf("sign up %s: want 201, got %d %s", email, res.Status, res.Body)
		}
	}
	// ...probing for taken emails does.
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		wantError(t, env.from(t, attacker, "signup", email, "correct horse"), http.StatusBadRequest, [2]string{"Email in use", "email"})
	}
	want429(t, env.from(t, attacker, "signup", "d@example.com", "correct horse"), "900")
	want429(t, env.from(t, attacker, "signup", "new@example.com", "correct horse"), "900")
	wantError(t, env.from(t, other, "signup", "d@example.com", "correct horse"), http.StatusBadRequest, [2]string{"Email in use", "email"})
}

func TestConcurrentProbesOfATakenEmailNeverPassTheLimit(t *testing.T) {
	// Arrange
	l := defaultLimits
	l.signUp.max = 3
	env := newEnvLimits(t, l, testenv.NewClock(time.Now()))
	env.from(t, home, "signup", "ann@example.com", "correct horse")
	const n = 20
	statuses := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup

	// Act
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = env.from(t, attacker, "signup", "ann@example.com", "correct horse").Status
		})
	}
	close(start)
	testenv.Wait(t, &wg, 5*time.Minute, "the concurrent sign-ups")

	// Assert
	slices.Sort(statuses)
	want := append(slices.Repeat([]int{http.StatusBadRequest}, 3), slices.Repeat([]int{http.StatusTooManyRequests}, n-3)...)
	if !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want three 400 and %d 429", statuses, n-3)
	}
}

func TestManyPeopleBehindOneAddressSignUpAtOnce(t *testing.T) {
	// Arrange: a limit of 3 taken emails per client; 30 new accounts at once from one address
	// (an office's NAT; make run, where every client is 127.0.0.1). Counting every sign-up
	// before its hash and giving it back after made 27 of e2e's 100 concurrent sign-ups 429.
	l := defaultLimits
	l.signUp.max = 3
	env := newEnvLimits(t, l, testenv.NewClock(time.Now()))
	const n = 30
	statuses := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup

	// Act
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = env.from(t, home, "signup", "person"+strings.Repeat("x", i)+"@example.com", "correct horse").Status
		})
	}
	close(start)
	testenv.Wait(t, &wg, 5*time.Minute, "the concurrent sign-ups")

	// Assert
	if want := slices.Repeat([]int{http.StatusCreated}, n); !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want %d 201", statuses, n)
	}
}

func TestTheClientIsTheFirstUntrustedHopFromTheRight(t *testing.T) {
	cases := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct, no header", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"direct: a client's own header is ignored", "203.0.113.7:5000", []string{"1.2.3.4"}, "203.0.113.7"},
		{"behind make run's ingress", "127.0.0.1:4000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"Kourier, activator, queue-proxy", "127.0.0.1:4000", []string{"203.0.113.7, 10.244.0.12, 10.244.0.9"}, "203.0.113.7"},
		{"a forged entry left of the real one", "127.0.0.1:4000", []string{"1.2.3.4, 203.0.113.7, 10.244.0.9"}, "203.0.113.7"},
		{"forged private entries stop at the real one", "127.0.0.1:4000", []string{"10.0.0.1, 203.0.113.7", "10.244.0.9"}, "203.0.113.7"},
		{"the gateway's own hop", "127.0.0.1:4000", []string{"203.0.113.7, 10.244.0.12, 127.0.0.1"}, "203.0.113.7"},
		{"garbage stops the walk", "127.0.0.1:4000", []string{"203.0.113.7, not-an-ip"}, "127.0.0.1"},
		{"all trusted: the leftmost", "127.0.0.1:4000", []string{"127.0.0.1"}, "127.0.0.1"},
		{"a port on an entry", "127.0.0.1:4000", []string{"203.0.113.7:5555"}, "203.0.113.7"},
		{"IPv6 by its /64", "[::1]:4000", []string{"2001:db8:1:2:3:4:5:6"}, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6", "[::ffff:127.0.0.1]:4000", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "http://auth/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, testTrusted); got != c.want {
				t.Fatalf("clientAddr(%s, %q) = %q, want %q", c.remote, c.xff, got, c.want)
			}
		})
	}
}

func TestTrustedProxiesMustBeCIDRs(t *testing.T) {
	if _, err := parseTrusted("10.0.0.0/8, nonsense"); err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Fatalf("parseTrusted accepted nonsense (err %v)", err)
	}
	if p, err := parseTrusted("10.244.0.0/16,fd00::/8"); err != nil || len(p) != 2 {
		t.Fatalf("parseTrusted: %v %v", p, err)
	}
}
