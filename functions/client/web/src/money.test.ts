import { describe, expect, it } from "vitest";
import { formatMoney, parsePrice, tidyPrice } from "./money";

describe("formatMoney", () => {
  it.each([
    [19.99, "$19.99"],
    [5, "$5.00"],
    [0.1 + 0.2, "$0.30"],
    [1000000, "$1,000,000.00"],
  ])("shows %s as %s", (price, shown) => {
    expect(formatMoney(price)).toBe(shown);
  });
});

describe("parsePrice", () => {
  it.each([
    ["19.99", 19.99],
    [" 5 ", 5],
    ["$1,250.50", 1250.5],
    [".5", 0.5],
    ["-3", -3],
    ["19.999", 19.999],
  ])("reads %j as %s (the API judges the range)", (typed, n) => {
    expect(parsePrice(typed)).toBe(n);
  });

  it.each(["", "abc", "1.2.3", "12abc", "$", "Infinity", "1e5"])("refuses %j", (typed) => {
    expect(parsePrice(typed)).toBeNull();
  });
});

describe("tidyPrice", () => {
  it("pads to two decimals", () => {
    expect(tidyPrice("5")).toBe("5.00");
    expect(tidyPrice("19.9")).toBe("19.90");
  });
  it("leaves what it cannot or should not change", () => {
    expect(tidyPrice("abc")).toBe("abc");
    expect(tidyPrice("19.999")).toBe("19.999");
  });
});
