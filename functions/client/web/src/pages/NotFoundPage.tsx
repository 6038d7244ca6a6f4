import { Link } from "react-router";
import { useTitle } from "../useTitle";

export function NotFoundPage() {
  useTitle("Not found");
  return (
    <section className="card narrow">
      <h1>Page not found</h1>
      <p>
        There is nothing here. <Link to="/">See the tickets for sale</Link>.
      </p>
    </section>
  );
}
