// Prices are the API's decimal numbers (19.99), in US dollars: payments charges in USD.

const dollars = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

/** 19.99 -> "$19.99", 5 -> "$5.00", 1000000 -> "$1,000,000.00". */
export function formatMoney(price: number): string {
  return dollars.format(price);
}

/**
 * Reads what someone typed into a price field: "19.99", "$19.99", "1,250.5", " 5 ".
 * Returns the number to send, or null when it is not a number at all. Whether the number is
 * an acceptable price (at most two decimals, from 0.50 to 999,999.99: what Stripe charges) the API decides, so
 * that its message is the one shown.
 */
export function parsePrice(input: string): number | null {
  const cleaned = input.trim().replace(/^\$/, "").replace(/,/g, "");
  if (!/^-?(\d+\.?\d*|\.\d+)$/.test(cleaned)) return null;
  const n = Number(cleaned);
  return Number.isFinite(n) ? n : null;
}

/** The price field's text after leaving it: two decimals when it is a number ("5" -> "5.00"). */
export function tidyPrice(input: string): string {
  const n = parsePrice(input);
  if (n === null) return input;
  // Keep what was typed when it has more than two decimals, so that the API's error explains it.
  const decimals = input.trim().split(".")[1] ?? "";
  return decimals.length > 2 ? input.trim() : n.toFixed(2);
}
