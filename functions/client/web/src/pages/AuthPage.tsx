// Sign up and sign in: one form, two endpoints. Each API error shows next to its field.
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, asApiError, ApiError } from "../api";
import { Alerts, Field } from "../components/Form";
import { useSession } from "../session";
import { useTitle } from "../useTitle";

const fields = ["email", "password"];

/** Where to go after signing in: the page that asked for it, else the ticket list. */
function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function AuthPage({ mode }: { mode: "signup" | "signin" }) {
  const signup = mode === "signup";
  useTitle(signup ? "Sign up" : "Sign in");
  const { setUser } = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const user = signup ? await api.signUp(email, password) : await api.signIn(email, password);
      setUser(user);
      navigate(safeNext(params.get("next")));
    } catch (err) {
      setError(asApiError(err));
      setBusy(false);
    }
  }

  const other = signup ? "/auth/signin" : "/auth/signup";
  const keep = params.get("next") ? `?next=${encodeURIComponent(params.get("next")!)}` : "";
  return (
    <section className="card narrow">
      <h1>{signup ? "Create your account" : "Sign in"}</h1>
      <form onSubmit={submit} noValidate>
        <Alerts messages={error ? error.general(fields) : []} />
        <Field
          label="Email"
          name="email"
          type="email"
          autoComplete="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={error?.forField("email")}
        />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete={signup ? "new-password" : "current-password"}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={error?.forField("password")}
          hint={signup ? "8 to 128 characters" : undefined}
        />
        <button type="submit" className="button primary" disabled={busy}>
          {signup ? "Sign up" : "Sign in"}
        </button>
      </form>
      <p className="muted switch">
        {signup ? "Have an account already? " : "New to tickit? "}
        <Link to={other + keep}>{signup ? "Sign in" : "Sign up"}</Link>
      </p>
    </section>
  );
}
