import { describe, expect, it } from "vitest";
import { orderState } from "./orderState";

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
});
