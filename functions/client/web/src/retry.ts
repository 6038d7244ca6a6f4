// Waiting out eventual consistency: a function that learns of something from another
// function's event answers 404 until that event has arrived.
import { ApiError } from "./api";

export interface Clock {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

const realClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

/** Calls call until it answers anything but a 404, for at most graceMs; then the 404 stands. */
export async function retryNotFound<T>(call: () => Promise<T>, graceMs: number, pauseMs: number, clock: Clock = realClock): Promise<T> {
  const until = clock.now() + graceMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404 || clock.now() >= until) throw err;
      await clock.sleep(pauseMs);
    }
  }
}
