// An order's status as a buyer reads it.
import type { Order } from "./api";

export type OrderState = "awaiting payment" | "expired" | "cancelled" | "complete";

/**
 * An unpaid order past its expiresAt is expired at once, before the expiration tick cancels it;
 * orders says so too (cancelled, reason "expired"), and so does this page's clock meanwhile.
 */
export function orderState(order: Pick<Order, "status" | "expiresAt" | "cancelReason">, now: number): OrderState {
  if (order.status === "created") return Date.parse(order.expiresAt) <= now ? "expired" : "awaiting payment";
  if (order.status === "cancelled" && order.cancelReason === "expired") return "expired";
  return order.status;
}

/** What the buyer reads about a cancelled order: why, and that the card was not charged. */
export function cancelNote(order: Pick<Order, "cancelReason">): string {
  switch (order.cancelReason) {
    case "ticket-changed":
      return "The seller changed this ticket before your order reached them, so the order was cancelled. Your card was not charged.";
    case "payment-refused":
      return "This ticket's price cannot be paid by card, so the order was cancelled. Your card was not charged.";
    default:
      return "This order was cancelled. If you had paid, your card was not charged: the amount held is released.";
  }
}
