import { describe, expect, it } from "vitest";
import { formatTimeLeft, timeLeft } from "./countdown";

describe("timeLeft", () => {
  const now = Date.parse("2026-11-25T19:00:00Z");

  it("counts the milliseconds to expiresAt", () => {
    expect(timeLeft("2026-11-25T19:15:00Z", now)).toBe(15 * 60 * 1000);
    expect(timeLeft("2026-11-25T20:15:00.500+01:00", now)).toBe(15 * 60 * 1000 + 500);
  });

  it("is zero once expiresAt has passed, and for a time it cannot read", () => {
    expect(timeLeft("2026-11-25T18:59:59Z", now)).toBe(0);
    expect(timeLeft("not a time", now)).toBe(0);
  });
});

describe("formatTimeLeft", () => {
  it.each([
    [15 * 60 * 1000, "15:00"],
    [14 * 60 * 1000 + 59_200, "15:00"],
    [14 * 60 * 1000 + 59_000, "14:59"],
    [61_000, "1:01"],
    [9_000, "0:09"],
    [1, "0:01"],
    [0, "0:00"],
    [-5, "0:00"],
    [3_723_000, "1:02:03"],
  ])("shows %s ms as %s", (ms, shown) => {
    expect(formatTimeLeft(ms)).toBe(shown);
  });
});
