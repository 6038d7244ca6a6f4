// Pages for signed-in people: anyone else is asked to sign in first, and comes back after.
import type { ReactNode } from "react";
import { Link, useLocation } from "react-router";
import { useSession } from "../session";

export function RequireUser({ what, children }: { what: string; children: ReactNode }) {
  const { user, loading } = useSession();
  const location = useLocation();
  if (loading) return <p className="muted">Loading…</p>;
  if (user) return <>{children}</>;
  const next = encodeURIComponent(location.pathname + location.search);
  return (
    <section className="card narrow">
      <h1>Sign in</h1>
      <p>
        Sign in to {what}. <Link to={`/auth/signin?next=${next}`}>Sign in</Link> or{" "}
        <Link to={`/auth/signup?next=${next}`}>create an account</Link>.
      </p>
    </section>
  );
}
