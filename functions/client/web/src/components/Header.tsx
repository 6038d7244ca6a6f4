// The header: the brand, and what a visitor can do from anywhere.
import { useState } from "react";
import { Link, NavLink, useNavigate } from "react-router";
import { api } from "../api";
import { useSession } from "../session";

export function Header() {
  const { user, loading, setUser } = useSession();
  const navigate = useNavigate();
  const [signingOut, setSigningOut] = useState(false);

  async function signOut() {
    setSigningOut(true);
    try {
      await api.signOut();
    } catch {
      // The cookie may survive a failed sign-out; the next currentuser call tells.
    } finally {
      setSigningOut(false);
    }
    setUser(null);
    navigate("/");
  }

  return (
    <header className="header">
      <div className="header-inner">
        <Link to="/" className="brand" aria-label="tickit home">
          <TicketMark /> tickit
        </Link>
        <nav className="nav" aria-label="Main">
          {loading ? null : user ? (
            <>
              <NavLink to="/tickets/new">Sell tickets</NavLink>
              <NavLink to="/orders" end>My orders</NavLink>
              <button type="button" className="link-button" onClick={signOut} disabled={signingOut}>
                Sign out
              </button>
            </>
          ) : (
            <>
              <NavLink to="/auth/signup">Sign up</NavLink>
              <NavLink to="/auth/signin">Sign in</NavLink>
            </>
          )}
        </nav>
      </div>
      {user && <div className="signed-in-as">Signed in as {user.email}</div>}
    </header>
  );
}

function TicketMark() {
  return (
    <svg className="brand-mark" viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
      <rect x="2" y="7" width="28" height="18" rx="4" fill="currentColor" />
      <circle cx="2" cy="16" r="4" fill="var(--paper)" />
      <circle cx="30" cy="16" r="4" fill="var(--paper)" />
      <path d="M20 9v14" stroke="var(--paper)" strokeWidth="2" strokeDasharray="2 2" />
    </svg>
  );
}
