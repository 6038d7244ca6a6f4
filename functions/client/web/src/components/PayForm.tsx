// Paying an order. With a publishable key the card is collected by Stripe.js (the card number
// never touches tickit); without one, Stripe's test payment methods stand in, so that the
// whole flow runs offline against stripe-mock.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, asApiError, ApiError, type Order, type Payment } from "../api";
import { formatMoney } from "../money";
import { useSettings } from "../settings";
import { loadStripe, type StripeCardElement, type StripeJS } from "../stripe";
import { Alerts } from "./Form";

interface Props {
  order: Order;
  /** The payment is succeeded (the order complete) or still authorized (orders deciding). */
  onPaid: (p: Payment) => void;
  /** Payments refused it with a 400: the order can no longer be paid (the page reloads it). */
  onRefused?: () => void;
}

export function PayForm({ order, onPaid, onRefused }: Props) {
  const settings = useSettings();
  if (!settings) return <p className="muted">Loading the payment form…</p>;
  return settings.stripePublishableKey ? (
    <StripeCardForm order={order} onPaid={onPaid} onRefused={onRefused} publishableKey={settings.stripePublishableKey} />
  ) : (
    <TestMethodForm order={order} onPaid={onPaid} onRefused={onRefused} />
  );
}

/** Sends the PaymentMethod id to payments; the API's refusals (402 declined...) are shown. */
function usePay(order: Order, onPaid: (p: Payment) => void, onRefused?: () => void) {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  async function pay(token: string) {
    setBusy(true);
    setError(null);
    try {
      onPaid(await api.pay(order.id, token));
    } catch (err) {
      const e = asApiError(err);
      setError(e);
      if (e.status === 400) onRefused?.();
    } finally {
      setBusy(false);
    }
  }
  return { error, setError, busy, setBusy, pay };
}

export const testMethods = [
  { id: "pm_card_visa", label: "Visa ending in 4242", note: "the payment succeeds" },
  { id: "pm_card_chargeDeclined", label: "Visa ending in 0002", note: "the card is declined" },
];

function TestMethodForm({ order, onPaid, onRefused }: Props) {
  const [method, setMethod] = useState(testMethods[0].id);
  const { error, busy, pay } = usePay(order, onPaid, onRefused);
  function submit(e: FormEvent) {
    e.preventDefault();
    void pay(method);
  }
  return (
    <form onSubmit={submit} className="pay-form">
      <fieldset>
        <legend>Test card</legend>
        <p className="hint">Test mode: no card is charged. Pick one of Stripe's test cards.</p>
        {testMethods.map((m) => (
          <label key={m.id} className="choice">
            <input type="radio" name="method" value={m.id} checked={method === m.id} onChange={() => setMethod(m.id)} />
            <span>
              {m.label} <span className="muted">({m.note})</span>
            </span>
          </label>
        ))}
      </fieldset>
      <Alerts messages={error ? error.general() : []} />
      <button type="submit" className="button primary" disabled={busy}>
        {busy ? "Paying…" : `Pay ${formatMoney(order.ticket.price)}`}
      </button>
    </form>
  );
}

function StripeCardForm({ order, onPaid, onRefused, publishableKey }: Props & { publishableKey: string }) {
  const mountAt = useRef<HTMLDivElement>(null);
  const [stripe, setStripe] = useState<{ js: StripeJS; card: StripeCardElement } | null>(null);
  const [cardError, setCardError] = useState("");
  const { error, setError, busy, setBusy, pay } = usePay(order, onPaid, onRefused);

  useEffect(() => {
    let card: StripeCardElement | null = null;
    let live = true;
    loadStripe(publishableKey)
      .then((js) => {
        if (!live || !mountAt.current) return;
        card = js.elements().create("card", { hidePostalCode: true });
        card.mount(mountAt.current);
        card.on("change", (e) => setCardError(e.error?.message ?? ""));
        setStripe({ js, card });
      })
      .catch((err) => live && setError(asApiError(err)));
    return () => {
      live = false;
      card?.destroy();
    };
  }, [publishableKey, setError]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!stripe) return;
    setBusy(true);
    const { paymentMethod, error: stripeError } = await stripe.js.createPaymentMethod({ type: "card", card: stripe.card });
    if (!paymentMethod) {
      setCardError(stripeError?.message ?? "The card could not be read");
      setBusy(false);
      return;
    }
    await pay(paymentMethod.id);
  }

  return (
    <form onSubmit={submit} className="pay-form">
      <label htmlFor="card">Card</label>
      <div id="card" ref={mountAt} className="card-element" />
      {cardError && (
        <div className="field-error" role="alert">
          {cardError}
        </div>
      )}
      <Alerts messages={error ? error.general() : []} />
      <button type="submit" className="button primary" disabled={busy || !stripe}>
        {busy ? "Paying…" : `Pay ${formatMoney(order.ticket.price)}`}
      </button>
    </form>
  );
}
