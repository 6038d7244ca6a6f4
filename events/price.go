package events

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// Price is an amount of money in integer cents. On the wire (events and the HTTP API) it is
// the decimal number people read, 19.99; parsing is exact decimal arithmetic, never float.
type Price int64

// ErrPrice is returned for a price that is not a number with at most two decimals.
var ErrPrice = errors.New("price must be a number with at most 2 decimals")

// The prices Stripe can charge in usd, tickit's one currency: at least $0.50 and at most eight
// digits of cents, $999,999.99. Source: Stripe's API description of PaymentIntent.amount ("The
// minimum amount is $0.50 US ... supports up to eight digits (e.g., a value of 99999999 for a
// USD charge of $999,999.99)") and docs.stripe.com/currencies#minimum-and-maximum-charge-amounts.
// A price outside them is refused where it enters (POST/PUT /api/tickets): a ticket nobody can
// pay for must never be listed. stripe-mock does not enforce them; Stripe does.
const (
	MinPrice Price = 50
	MaxPrice Price = 99_999_999
)

// Chargeable reports whether Stripe can charge the price (MinPrice <= p <= MaxPrice).
func (p Price) Chargeable() bool { return p >= MinPrice && p <= MaxPrice }

// MarshalJSON writes the price as a JSON number: 1999 -> 19.99, 2000 -> 20.
func (p Price) MarshalJSON() ([]byte, error) { return p.appendDecimal(nil), nil }

// String formats the price as a decimal number without trailing zeros.
func (p Price) String() string { return string(p.appendDecimal(nil)) }

// appendDecimal appends the price as a decimal number without trailing zeros. It is on the
// path of every listed ticket (fmt.Sprintf was a tenth of a list page's CPU).
func (p Price) appendDecimal(b []byte) []byte {
	c := uint64(p)
	if p < 0 {
		b, c = append(b, '-'), uint64(-p)
	}
	b = strconv.AppendUint(b, c/100, 10)
	if cents := c % 100; cents != 0 {
		b = append(b, '.', byte('0'+cents/10))
		if cents%10 != 0 {
			b = append(b, byte('0'+cents%10))
		}
	}
	return b
}

// UnmarshalJSON accepts a JSON number with at most two decimals (19.99, 1e2, 19.990).
func (p *Price) UnmarshalJSON(b []byte) error {
	v, err := ParsePrice(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePrice parses a decimal number literal into cents, exactly.
func ParsePrice(s string) (Price, error) {
	// Bound the literal before big.Rat sees it: "1e999999999" would allocate without limit.
	if len(s) == 0 || len(s) > 40 || strings.ContainsAny(s, "\"/_ ") {
		return 0, ErrPrice
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		if err != nil || exp > 12 || exp < -12 {
			return 0, ErrPrice
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, ErrPrice
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, ErrPrice
	}
	return Price(r.Num().Int64()), nil
}
