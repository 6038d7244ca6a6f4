package events_test

import (
	"encoding/json"
	"testing"

	"github.com/tickit/tickit/events"
)

func TestPriceParsesDecimalsExactly(t *testing.T) {
	cases := []struct {
		in   string
		want events.Price
		ok   bool
	}{
		{"19.99", 1999, true},
		{"0.1", 10, true},
		{"0.30", 30, true},
		{"1e2", 10000, true},
		{"19.990", 1999, true},
		{"1000000", 100000000, true},
		{"0.30000000000000004", 0, false}, // 0.1 + 0.2 in float
		{"1.999", 0, false},
		{`"19.99"`, 0, false},
		{"1e999999999", 0, false},
		{"abc", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		got, err := events.ParsePrice(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParsePrice(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestPriceMarshalsAsTheNumberPeopleRead(t *testing.T) {
	for cents, want := range map[events.Price]string{1999: "19.99", 2000: "20", 1990: "19.9", 1905: "19.05", 10: "0.1", 5: "0.05", 0: "0", -1999: "-19.99", 100000000: "1000000"} {
		b, err := json.Marshal(cents)
		if err != nil || string(b) != want {
			t.Errorf("Marshal(%d) = %s, %v; want %s", cents, b, err, want)
		}
		var back events.Price
		if err := json.Unmarshal(b, &back); err != nil || back != cents {
			t.Errorf("Unmarshal(%s) = %d, %v", b, back, err)
		}
	}
}

func TestChargeableIsWhatStripeChargesInUSD(t *testing.T) {
	for p, want := range map[events.Price]bool{0: false, 49: false, 50: true, 1999: true, 99_999_999: true, 100_000_000: false} {
		if got := p.Chargeable(); got != want {
			t.Errorf("Price(%d).Chargeable() = %v, want %v", p, got, want)
		}
	}
}
