import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError } from "./api";

function answer(status: number, body: string, contentType = "application/json") {
  return vi.fn(async () => new Response(body, { status, headers: { "Content-Type": contentType } }));
}

afterEach(() => vi.unstubAllGlobals());

describe("the API client", () => {
  it("sends JSON with the session cookie and reads JSON back", async () => {
    const fetch = answer(201, `{"id":"t1","title":"Concert","price":19.99}`);
    vi.stubGlobal("fetch", fetch);
    const t = await api.createTicket("Concert", 19.99);
    expect(t.price).toBe(19.99);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/tickets");
    expect(init.method).toBe("POST");
    expect(init.credentials).toBe("same-origin");
    expect(JSON.parse(init.body as string)).toEqual({ title: "Concert", price: 19.99 });
  });

  it("turns the error format into field and general messages", async () => {
    vi.stubGlobal("fetch", answer(400, `{"errors":[{"message":"Title is required","field":"title"},{"message":"Slow down"}]}`));
    const err = (await api.createTicket("", 1).catch((e) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.forField("title")).toBe("Title is required");
    expect(err.forField("price")).toBeUndefined();
    expect(err.general(["title"])).toEqual(["Slow down"]);
  });

  it("keeps a field error general when the form has no such field", async () => {
    vi.stubGlobal("fetch", answer(400, `{"errors":[{"message":"Unknown field admin","field":"admin"}]}`));
    const err = (await api.signUp("a@b.co", "x").catch((e) => e)) as ApiError;
    expect(err.general(["email", "password"])).toEqual(["Unknown field admin"]);
  });

  it("explains an answer that is not the error format", async () => {
    vi.stubGlobal("fetch", answer(502, "<html>Bad Gateway</html>", "text/html"));
    const err = (await api.orders().catch((e) => e)) as ApiError;
    expect(err.status).toBe(502);
    expect(err.errors).toHaveLength(1);
    expect(err.message).toMatch(/Something went wrong \(502/);
  });

  it("says so when the server cannot be reached", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const err = (await api.orders().catch((e) => e)) as ApiError;
    expect(err.status).toBe(0);
    expect(err.message).toMatch(/cannot be reached/);
  });

  it("reads the current user, or null", async () => {
    vi.stubGlobal("fetch", answer(200, `{"currentUser":null}`));
    expect(await api.currentUser()).toBeNull();
  });
});
