// The tickets for sale, newest first, a page at a time (?after=<last id of the page before>).
import { Link, useLocation, useNavigate, useSearchParams } from "react-router";
import { api } from "../api";
import { Alerts } from "../components/Form";
import { formatMoney } from "../money";
import { useApi } from "../useApi";
import { useSession } from "../session";
import { useTitle } from "../useTitle";

export const pageSize = 10;

/** The after= values of the pages before this one, so that "Previous" can go back. */
interface Trail {
  trail?: string[];
}

export function TicketsPage() {
  useTitle("Tickets for sale");
  const [params] = useSearchParams();
  const after = params.get("after") ?? undefined;
  const location = useLocation();
  const navigate = useNavigate();
  const { user } = useSession();
  const trail = (location.state as Trail | null)?.trail ?? [];
  // One more than a page tells whether there is a next page.
  const { data, error, loading } = useApi(() => api.listTickets(pageSize + 1, after), [after]);
  const tickets = data?.slice(0, pageSize) ?? [];
  const hasNext = (data?.length ?? 0) > pageSize;

  function next() {
    navigate(`/?after=${tickets[tickets.length - 1].id}`, { state: { trail: [...trail, after ?? ""] } });
  }
  function previous() {
    const before = trail[trail.length - 1];
    navigate(before ? `/?after=${before}` : "/", { state: { trail: trail.slice(0, -1) } });
  }

  return (
    <section>
      <div className="page-head">
        <h1>Tickets for sale</h1>
        {user && (
          <Link to="/tickets/new" className="button primary">
            Sell a ticket
          </Link>
        )}
      </div>
      <Alerts messages={error ? error.general() : []} />
      {loading && !data ? (
        <p className="muted">Loading tickets…</p>
      ) : tickets.length === 0 && !error ? (
        <p className="empty">{after ? "No more tickets." : "No tickets for sale right now. Check back soon."}</p>
      ) : (
        <ul className="ticket-list" aria-label="Tickets">
          {tickets.map((t) => (
            <li key={t.id}>
              <Link to={`/tickets/${t.id}`} className="ticket-row">
                <span className="ticket-title">{t.title}</span>
                <span className="price">{formatMoney(t.price)}</span>
              </Link>
            </li>
          ))}
        </ul>
      )}
      {(after || hasNext) && (
        <nav className="pager" aria-label="Pages">
          <button type="button" className="button" onClick={previous} disabled={!after}>
            ← Previous
          </button>
          <button type="button" className="button" onClick={next} disabled={!hasNext}>
            Next →
          </button>
        </nav>
      )}
    </section>
  );
}
