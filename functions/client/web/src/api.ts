// The tickit HTTP API as the UI uses it (DESIGN.md section 4). Every call goes to this origin;
// the session travels in the HttpOnly "session" cookie that sign-up and sign-in set.

export interface FieldError {
  message: string;
  field?: string;
}

/** An answer other than 2xx, with the API's error list. */
export class ApiError extends Error {
  readonly status: number;
  readonly errors: FieldError[];

  constructor(status: number, errors: FieldError[]) {
    super(errors.map((e) => e.message).join("; "));
    this.status = status;
    this.errors = errors;
  }

  /** The message for one form field, if the API named it. */
  forField(field: string): string | undefined {
    return this.errors.find((e) => e.field === field)?.message;
  }

  /** Messages not tied to any of the given fields: shown above the form. */
  general(shownFields: string[] = []): string[] {
    return this.errors.filter((e) => !e.field || !shownFields.includes(e.field)).map((e) => e.message);
  }
}

export interface User {
  id: string;
  email: string;
}

export interface Ticket {
  id: string;
  title: string;
  price: number;
  userId: string;
  version: number;
  /** The order holding the ticket: reserved while it is being paid, then the buyer's. */
  orderId?: string;
  sold?: boolean;
}

export type OrderStatus = "created" | "cancelled" | "complete";

/** Why a cancelled order was cancelled (orders' cancelReason). */
export type CancelReason = "buyer" | "expired" | "ticket-changed" | "payment-refused";

export interface Order {
  id: string;
  /** What is true now: an order past its window reads "cancelled" (reason "expired") at once. */
  status: OrderStatus;
  userId: string;
  expiresAt: string;
  version: number;
  ticket: { id: string; title: string; price: number };
  paymentId?: string;
  cancelReason?: CancelReason;
}

/**
 * A payment as payments shows it. POST /api/payments answers 201 "succeeded" once the order is
 * complete and the card charged, 202 "authorized" while orders has not decided yet (the amount
 * is held, not taken), and a 400 when the order could no longer be paid (the hold is released).
 */
export interface Payment {
  id: string;
  orderId: string;
  stripeId: string;
  amount: number;
  currency: string;
  status: "authorized" | "succeeded" | "released" | "refunded";
}

/** What the client function tells the UI at start (GET /config.json). */
export interface ClientSettings {
  stripePublishableKey: string;
}

const unreachable = "tickit cannot be reached right now. Check your connection and try again.";

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, [{ message: unreachable }]);
  }
  const text = await resp.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!resp.ok) {
    const errors = (data as { errors?: FieldError[] } | undefined)?.errors;
    throw new ApiError(resp.status, Array.isArray(errors) && errors.length > 0 ? errors : [{ message: `Something went wrong (${resp.status} ${resp.statusText}). Please try again.` }]);
  }
  return data as T;
}

export const api = {
  currentUser: () => call<{ currentUser: User | null }>("GET", "/api/users/currentuser").then((r) => r.currentUser),
  signUp: (email: string, password: string) => call<User>("POST", "/api/users/signup", { email, password }),
  signIn: (email: string, password: string) => call<User>("POST", "/api/users/signin", { email, password }),
  signOut: () => call<unknown>("POST", "/api/users/signout", {}),

  listTickets: (limit: number, after?: string) => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after) q.set("after", after);
    return call<Ticket[]>("GET", `/api/tickets?${q}`);
  },
  ticket: (id: string) => call<Ticket>("GET", `/api/tickets/${encodeURIComponent(id)}`),
  createTicket: (title: string, price: number | string | null) => call<Ticket>("POST", "/api/tickets", { title, price }),

  createOrder: (ticketId: string) => call<Order>("POST", "/api/orders", { ticketId }),
  orders: () => call<Order[]>("GET", "/api/orders"),
  order: (id: string) => call<Order>("GET", `/api/orders/${encodeURIComponent(id)}`),
  cancelOrder: (id: string) => call<unknown>("DELETE", `/api/orders/${encodeURIComponent(id)}`),

  pay: (orderId: string, token: string) => call<Payment>("POST", "/api/payments", { orderId, token }),

  settings: () => call<ClientSettings>("GET", "/config.json"),
};

/** Turns anything thrown into an ApiError, so that pages show one kind of error. */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(0, [{ message: err instanceof Error ? err.message : String(err) }]);
}
