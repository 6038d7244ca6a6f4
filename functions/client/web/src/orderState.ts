// An order's status as a buyer reads it.
import type { Order } from "./api";

export type OrderState = "awaiting payment" | "expired" | "cancelled" | "complete";

/** An unpaid order past its expiresAt is expired at once, before the expiration tick cancels it. */
export function orderState(order: Pick<Order, "status" | "expiresAt">, now: number): OrderState {
  if (order.status === "created") return Date.parse(order.expiresAt) <= now ? "expired" : "awaiting payment";
  return order.status;
}
