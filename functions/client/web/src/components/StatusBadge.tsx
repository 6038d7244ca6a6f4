import type { Order } from "../api";
import { orderState } from "../orderState";

export function StatusBadge({ order, now }: { order: Order; now: number }) {
  const state = orderState(order, now);
  return <span className={`badge badge-${state.replace(" ", "-")}`}>{state}</span>;
}
