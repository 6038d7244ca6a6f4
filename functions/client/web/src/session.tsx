// Who is signed in, read once at start from GET /api/users/currentuser and updated by the
// sign-up, sign-in and sign-out pages.
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { api, type User } from "./api";

interface Session {
  user: User | null;
  loading: boolean;
  setUser: (u: User | null) => void;
}

const SessionContext = createContext<Session>({ user: null, loading: true, setUser: () => {} });

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUserState] = useState<User | null>(null);
  const [loading, setLoading] = useState(true);
  // Set once a page signs someone in or out: a slower first currentuser answer is stale then.
  const decided = useRef(false);

  useEffect(() => {
    let live = true;
    api
      .currentUser()
      .then((u) => live && !decided.current && setUserState(u ? { id: u.id, email: u.email } : null))
      .catch(() => live && !decided.current && setUserState(null))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, []);

  const setUser = useCallback((u: User | null) => {
    decided.current = true;
    setUserState(u);
    setLoading(false);
  }, []);

  return <SessionContext.Provider value={{ user, loading, setUser }}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  return useContext(SessionContext);
}
