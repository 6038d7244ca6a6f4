// One order: its ticket, a live countdown to expiresAt, and the pay form while it is payable.
// Paying authorizes the card and waits for orders' decision: 201 "succeeded" means the order is
// complete (the page reloads it), 202 "authorized" means orders has not decided yet (the page
// watches the order until it says complete or cancelled), a 400 means the order could no longer
// be paid and the hold was released (the page reloads it and says why).
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { api, asApiError, ApiError } from "../api";
import { formatTimeLeft, timeLeft } from "../countdown";
import { Alerts } from "../components/Form";
import { PayForm } from "../components/PayForm";
import { StatusBadge } from "../components/StatusBadge";
import { formatMoney } from "../money";
import { cancelNote, orderState } from "../orderState";
import { useApi } from "../useApi";
import { useNow } from "../useNow";
import { useTitle } from "../useTitle";

/** How often and how long the page asks orders whether a paid order is complete. */
const confirmEvery = 1000;
const confirmFor = 60_000;

export function OrderPage() {
  const { id = "" } = useParams();
  useTitle("Order");
  const now = useNow(250);
  const { data: order, error: loadError, loading, setData, reload } = useApi(() => api.order(id), [id]);
  const [paid, setPaid] = useState(false);
  const [slow, setSlow] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [cancelling, setCancelling] = useState(false);

  // After paying: ask again until the order is no longer "created".
  useEffect(() => {
    if (!paid || !order || order.status !== "created") return;
    const started = Date.now();
    const t = setInterval(async () => {
      if (Date.now() - started > confirmFor) {
        setSlow(true);
        clearInterval(t);
        return;
      }
      try {
        const latest = await api.order(id);
        if (latest.status !== "created") setData(latest);
      } catch {
        // A failed poll is retried on the next tick.
      }
    }, confirmEvery);
    return () => clearInterval(t);
  }, [paid, order, id, setData]);

  async function cancel() {
    setCancelling(true);
    setError(null);
    try {
      await api.cancelOrder(id);
      reload();
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setCancelling(false);
    }
  }

  if (loading && !order) return <p className="muted">Loading order…</p>;
  if (!order) {
    return (
      <section className="card narrow">
        <h1>Order not available</h1>
        <Alerts messages={loadError ? loadError.general() : []} />
        <Link to="/orders">Back to my orders</Link>
      </section>
    );
  }

  const state = orderState(order, now);
  // A paid order stays "created" until orders hears of the payment, whatever the clock says.
  const confirming = paid && order.status === "created";
  return (
    <section className="card narrow order">
      <div className="page-head">
        <h1>Order</h1>
        <StatusBadge order={order} now={now} />
      </div>
      <dl className="facts">
        <dt>Ticket</dt>
        <dd>
          <Link to={`/tickets/${order.ticket.id}`}>{order.ticket.title}</Link>
        </dd>
        <dt>Price</dt>
        <dd className="price">{formatMoney(order.ticket.price)}</dd>
      </dl>

      {state === "awaiting payment" && !confirming && (
        <>
          <p className="countdown" aria-live="off">
            Time left to pay: <strong data-testid="countdown">{formatTimeLeft(timeLeft(order.expiresAt, now))}</strong>
          </p>
          <PayForm
            order={order}
            onPaid={(p) => (p.status === "succeeded" ? reload() : setPaid(true))}
            onRefused={reload}
          />
          <Alerts messages={error ? error.general() : []} />
          <button type="button" className="link-button cancel" onClick={cancel} disabled={cancelling}>
            Cancel this order
          </button>
        </>
      )}
      {confirming && (
        <p className="note" role="status">
          Your card is authorized. Confirming your order…
          {slow && (
            <>
              {" "}
              This takes longer than usual: <button type="button" className="link-button" onClick={reload}>check again</button>.
            </>
          )}
        </p>
      )}
      {state === "expired" && !confirming && (
        <div className="alert" role="alert">
          <strong>Order expired.</strong> The ticket was held for you for a limited time and is available to others again.{" "}
          <Link to={`/tickets/${order.ticket.id}`}>Try to buy it again</Link>.
        </div>
      )}
      {state === "cancelled" && (
        <p className="note">
          {cancelNote(order)} <Link to="/">See the tickets for sale</Link>.
        </p>
      )}
      {state === "complete" && (
        <div className="success" role="status">
          <strong>Order complete.</strong> The ticket is yours; a confirmation email is on its way.
        </div>
      )}
    </section>
  );
}
