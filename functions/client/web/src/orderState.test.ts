import { describe, expect, it } from "vitest";
import { cancelNote, orderState } from "./orderState";

describe("orderState", () => {
  const now = Date.parse("2026-11-25T19:00:00Z");
  it.each([
    ["created", "2026-11-25T19:00:01Z", "awaiting payment"],
    ["created", "2026-11-25T19:00:00Z", "expired"],
    ["created", "2026-11-25T18:45:00Z", "expired"],
    ["complete", "2026-11-25T18:45:00Z", "complete"],
    ["cancelled", "2026-11-25T19:15:00Z", "cancelled"],
  ] as const)("a %s order expiring %s is %s", (status, expiresAt, state) => {
    expect(orderState({ status, expiresAt }, now)).toBe(state);
  });

  it("reads an order orders cancelled as expired as expired, and any other cancel as cancelled", () => {
    expect(orderState({ status: "cancelled", expiresAt: "2026-11-25T18:45:00Z", cancelReason: "expired" }, now)).toBe("expired");
    expect(orderState({ status: "cancelled", expiresAt: "2026-11-25T19:15:00Z", cancelReason: "buyer" }, now)).toBe("cancelled");
  });
});

describe("cancelNote", () => {
  it("says why, and that the card was not charged", () => {
    expect(cancelNote({ cancelReason: "ticket-changed" })).toMatch(/seller changed this ticket.*not charged/);
    expect(cancelNote({ cancelReason: "payment-refused" })).toMatch(/cannot be paid by card.*not charged/);
    expect(cancelNote({ cancelReason: "buyer" })).toMatch(/cancelled.*not charged/);
  });
});
