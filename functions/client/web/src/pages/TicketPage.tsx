// One ticket: its title and price, and Purchase, which reserves it with a new order.
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, asApiError, ApiError } from "../api";
import { Alerts } from "../components/Form";
import { formatMoney } from "../money";
import { retryNotFound } from "../retry";
import { useApi } from "../useApi";
import { useSession } from "../session";
import { useTitle } from "../useTitle";

/**
 * How long Purchase waits for orders to hear of a ticket listed a moment ago: orders learns
 * of tickets from tickets' events and answers 404 until then.
 */
const newTicketGrace = 5000;

export function TicketPage() {
  const { id = "" } = useParams();
  const { user } = useSession();
  const navigate = useNavigate();
  const { data: ticket, error: loadError, loading } = useApi(() => api.ticket(id), [id]);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  useTitle(ticket?.title ?? "Ticket");

  async function purchase() {
    setBusy(true);
    setError(null);
    try {
      const order = await retryNotFound(() => api.createOrder(id), newTicketGrace, 500);
      navigate(`/orders/${order.id}`);
    } catch (err) {
      setError(asApiError(err));
      setBusy(false);
    }
  }

  if (loading && !ticket) return <p className="muted">Loading ticket…</p>;
  if (!ticket) {
    return (
      <section className="card narrow">
        <h1>Ticket not available</h1>
        <Alerts messages={loadError ? loadError.general() : []} />
        <Link to="/">Back to the tickets for sale</Link>
      </section>
    );
  }
  const own = user?.id === ticket.userId;
  return (
    <section className="card narrow">
      <h1>{ticket.title}</h1>
      <p className="price big">{formatMoney(ticket.price)}</p>
      <div className="actions">
        {ticket.sold ? (
          <p className="note">{own ? "You sold this ticket." : "This ticket has been sold."}</p>
        ) : own ? (
          <p className="note">{ticket.orderId ? "You are selling this ticket; a buyer is paying for it right now." : "You are selling this ticket."}</p>
        ) : (
          <>
            {ticket.orderId && <p className="note">Someone is buying this ticket right now.</p>}
            <Alerts messages={error ? error.general() : []} />
            {user ? (
              <button type="button" className="button primary" onClick={purchase} disabled={busy}>
                {busy ? "Reserving…" : "Purchase"}
              </button>
            ) : (
              <p>
                <Link to={`/auth/signin?next=${encodeURIComponent(`/tickets/${ticket.id}`)}`}>Sign in</Link> to buy this ticket.
              </p>
            )}
          </>
        )}
      </div>
    </section>
  );
}
