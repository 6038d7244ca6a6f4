// The time left on an order's reservation, counted down to expiresAt.

/** Milliseconds from now until expiresAt (an RFC 3339 time); 0 once it has passed. */
export function timeLeft(expiresAt: string, now: number): number {
  const end = Date.parse(expiresAt);
  if (Number.isNaN(end)) return 0;
  return Math.max(0, end - now);
}

/**
 * 14 minutes 59.2 seconds -> "14:59"; over an hour -> "1:02:03". Rounds up, so that "0:00"
 * shows only once the time is really up.
 */
export function formatTimeLeft(ms: number): string {
  const total = Math.ceil(Math.max(0, ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}
