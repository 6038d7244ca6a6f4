// The signed-in buyer's orders, newest first as orders returns them.
import { Link } from "react-router";
import { api } from "../api";
import { Alerts } from "../components/Form";
import { StatusBadge } from "../components/StatusBadge";
import { formatMoney } from "../money";
import { useApi } from "../useApi";
import { useNow } from "../useNow";
import { useTitle } from "../useTitle";

export function OrdersPage() {
  useTitle("My orders");
  const now = useNow(5000);
  const { data: orders, error, loading } = useApi(() => api.orders(), []);
  return (
    <section>
      <h1>My orders</h1>
      <Alerts messages={error ? error.general() : []} />
      {loading && !orders ? (
        <p className="muted">Loading orders…</p>
      ) : !orders || orders.length === 0 ? (
        !error && (
          <p className="empty">
            No orders yet. <Link to="/">Find a ticket</Link>.
          </p>
        )
      ) : (
        <ul className="ticket-list" aria-label="Orders">
          {orders.map((o) => (
            <li key={o.id}>
              <Link to={`/orders/${o.id}`} className="ticket-row">
                <span className="ticket-title">{o.ticket.title}</span>
                <span className="row-end">
                  <span className="price">{formatMoney(o.ticket.price)}</span>
                  <StatusBadge order={o} now={now} />
                </span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
