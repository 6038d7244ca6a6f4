// Selling a ticket: a title and a price in dollars with two decimals.
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { api, asApiError, ApiError } from "../api";
import { Alerts, Field } from "../components/Form";
import { parsePrice, tidyPrice } from "../money";
import { useTitle } from "../useTitle";

const fields = ["title", "price"];

export function NewTicketPage() {
  useTitle("Sell a ticket");
  const navigate = useNavigate();
  const [title, setTitle] = useState("");
  const [price, setPrice] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    // The API judges every rule and names the field; the UI only sends the number it read,
    // or what was typed when that is no number, so that the API's message explains it.
    const typed = price.trim();
    const amount = typed === "" ? null : (parsePrice(typed) ?? typed);
    setBusy(true);
    setError(null);
    try {
      await api.createTicket(title, amount);
      navigate("/");
    } catch (err) {
      setError(asApiError(err));
      setBusy(false);
    }
  }

  return (
    <section className="card narrow">
      <h1>Sell a ticket</h1>
      <form onSubmit={submit} noValidate>
        <Alerts messages={error ? error.general(fields) : []} />
        <Field
          label="Title"
          name="title"
          value={title}
          maxLength={200}
          placeholder="Concert, row 12, seat 4"
          onChange={(e) => setTitle(e.target.value)}
          error={error?.forField("title")}
        />
        <Field
          label="Price (USD)"
          name="price"
          inputMode="decimal"
          placeholder="19.99"
          value={price}
          onChange={(e) => setPrice(e.target.value)}
          onBlur={() => setPrice(tidyPrice(price))}
          error={error?.forField("price")}
        />
        <button type="submit" className="button primary" disabled={busy}>
          List ticket
        </button>
      </form>
    </section>
  );
}
