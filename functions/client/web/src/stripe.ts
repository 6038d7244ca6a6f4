// Stripe.js v3, loaded from Stripe only when the client function has a publishable key (so
// local runs and tests never reach out). Just the part of its API the pay form uses.

export interface StripeCardElement {
  mount(el: HTMLElement): void;
  destroy(): void;
  on(event: "change", handler: (e: { error?: { message: string } }) => void): void;
}

export interface StripeJS {
  elements(): { create(type: "card", options?: object): StripeCardElement };
  createPaymentMethod(args: { type: "card"; card: StripeCardElement }): Promise<{
    paymentMethod?: { id: string };
    error?: { message?: string };
  }>;
}

declare global {
  interface Window {
    Stripe?: (publishableKey: string) => StripeJS;
  }
}

const stripeJS = "https://js.stripe.com/v3";
let loading: Promise<StripeJS> | null = null;

/** Loads Stripe.js once and returns a client for the key. */
export function loadStripe(publishableKey: string): Promise<StripeJS> {
  loading ??= new Promise<void>((resolve, reject) => {
    const script = document.createElement("script");
    script.src = stripeJS;
    script.async = true;
    script.onload = () => resolve();
    script.onerror = () => {
      loading = null;
      reject(new Error("Stripe's card form could not be loaded. Check your connection and try again."));
    };
    document.head.appendChild(script);
  }).then(() => {
    if (!window.Stripe) throw new Error("Stripe.js loaded without Stripe()");
    return window.Stripe(publishableKey);
  });
  return loading;
}
