import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { retryNotFound, type Clock } from "./retry";

/** A clock that moves only when slept on. */
function fakeClock(): Clock & { slept: number } {
  let t = 0;
  const c = { slept: 0, now: () => t, sleep: async (ms: number) => { t += ms; c.slept += 1; } };
  return c;
}

const notFound = new ApiError(404, [{ message: "Ticket not found" }]);

describe("retryNotFound", () => {
  it("retries a 404 until the answer arrives", async () => {
    const clock = fakeClock();
    let calls = 0;
    const got = await retryNotFound(async () => (++calls < 3 ? Promise.reject(notFound) : "order"), 5000, 500, clock);
    expect(got).toBe("order");
    expect(calls).toBe(3);
  });

  it("gives up with the 404 once the grace is over", async () => {
    const clock = fakeClock();
    await expect(retryNotFound(() => Promise.reject(notFound), 5000, 500, clock)).rejects.toBe(notFound);
    expect(clock.slept).toBe(10);
  });

  it("never retries another refusal", async () => {
    const clock = fakeClock();
    const reserved = new ApiError(400, [{ message: "Ticket is already reserved", field: "ticketId" }]);
    await expect(retryNotFound(() => Promise.reject(reserved), 5000, 500, clock)).rejects.toBe(reserved);
    expect(clock.slept).toBe(0);
  });
});
