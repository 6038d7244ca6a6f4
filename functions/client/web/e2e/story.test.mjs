// The tickit story in a real browser (Debian's chromium driven by playwright-core), through
// the local runtime's ingress, as people would use it: a seller lists tickets; a buyer buys
// one, watches the countdown and pays with Stripe's test card; a second buyer finds it gone
// and sees a declined card refused. Screenshots of every page go to e2e-output/.
//
// Against E2E_BASE_URL when set (a tickit already running); otherwise this suite starts
// `make run` with its ingress on a free loopback port and its data in a fresh folder, and
// stops it at the end.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../../..");
let baseURL = (process.env.E2E_BASE_URL ?? "").replace(/\/$/, "");
const outDir = resolve(process.env.E2E_OUTPUT ?? join(here, "..", "e2e-output"));
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

// Flags that keep the browser off the network and free of first-run work. playwright-core
// adds --headless itself, and gives the browser a fresh --user-data-dir (a temporary
// profile, deleted at close); it refuses one passed here.
const chromiumFlags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const run = Date.now().toString(36);
const password = "correct horse battery";
const concert = `Concert ${run}, row 12 seat 4`;
const opera = `Opera ${run}, balcony`;
const jazz = `Jazz night ${run}`;
const theatre = `Theatre ${run}, stalls`;

let browser;
let system; // the `make run` process, when this suite started it
let systemData; // and its data folder
let shot = 0;
const pageErrors = [];
const openPages = new Set();

async function answers(url) {
  try {
    const resp = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return resp.ok;
  } catch {
    return false;
  }
}

async function waitUntil(what, check, ms) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (system && system.exitCode !== null) throw new Error(`make run exited (${system.exitCode}) before ${what}: see ${join(outDir, "make-run.log")}`);
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** A loopback port that was free a moment ago. */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer().once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

before(async () => {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  if (!baseURL) {
    const addr = `127.0.0.1:${await freePort()}`;
    baseURL = `http://${addr}`;
    systemData = mkdtempSync(join(tmpdir(), "tickit-e2e-"));
    const log = openSync(join(outDir, "make-run.log"), "w");
    console.log(`# starting make run on ${addr} (log: ${join(outDir, "make-run.log")})`);
    system = spawn("make", ["run"], {
      cwd: repo,
      detached: true, // its own process group, stopped as one at the end
      stdio: ["ignore", log, log],
      env: { ...process.env, ADDR: addr, DATA: systemData },
    });
  }
  // The client function answers /config.json; the API answers once the functions are up.
  // A cold first build of every function takes minutes on two cores.
  await waitUntil(`the client function at ${baseURL}`, () => answers(`${baseURL}/config.json`), 15 * 60_000);
  await waitUntil("the tickets API", () => answers(`${baseURL}/api/tickets?limit=1`), 3 * 60_000);
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumFlags });
}, { timeout: 20 * 60_000 });

after(async () => {
  await browser?.close();
  if (system && system.exitCode === null) {
    process.kill(-system.pid, "SIGTERM"); // the process group this suite started
    const stopped = new Promise((r) => system.once("exit", r));
    const timeout = new Promise((r) => setTimeout(r, 20_000, "timeout").unref()); // unref: else it holds node 20 s after the stop
    if ((await Promise.race([stopped, timeout])) === "timeout") process.kill(-system.pid, "SIGKILL");
  }
  if (systemData) rmSync(systemData, { recursive: true, force: true });
});

/** Requests for Stripe.js; only a page told of a publishable key may make one. */
const stripeRequests = [];

/** A browser context of its own (cookies and all) for one person. */
async function person(viewport = { width: 1024, height: 800 }) {
  const context = await browser.newContext({ baseURL, viewport });
  context.on("request", (req) => req.url().startsWith("https://js.stripe.com/") && stripeRequests.push(req.url()));
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(`${page.url()}: ${err.message}`));
  openPages.add(page);
  page.on("close", () => openPages.delete(page));
  return page;
}

/** A step of the story; when it fails, every page still open is photographed as it was. */
function story(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      for (const page of openPages) await screenshot(page, "FAILED").catch(() => {});
      throw err;
    } finally {
      for (const page of openPages) await page.context().close();
    }
  });
}

async function screenshot(page, name) {
  shot += 1;
  await page.screenshot({ path: join(outDir, `${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
}

async function signUp(page, email) {
  await page.goto("/");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sign up" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.waitForURL(`${baseURL}/`);
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

/** Waits until the listing on / shows (or no longer shows) a title, reloading: tickets
 * learns of reservations from events, a moment after they happen. */
async function waitForListing(page, title, shown) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    await page.goto("/");
    await page.getByRole("heading", { name: "Tickets for sale" }).waitFor();
    await page.locator(".ticket-list, .empty").first().waitFor();
    const count = await page.getByRole("link", { name: new RegExp(escape(title)) }).count();
    if ((count > 0) === shown) return;
    if (Date.now() > deadline) assert.fail(`after 30 s the listing still ${shown ? "lacks" : "shows"} ${title}`);
    await page.waitForTimeout(1000);
  }
}

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const ticketURLs = {};
let buyerOrderURL;

story("a seller signs up, sees errors next to their fields, and lists four tickets", async () => {
  const page = await person();
  await page.goto("/");
  await page.getByRole("heading", { name: "Tickets for sale" }).waitFor();
  await screenshot(page, "home-signed-out");

  // Bad input: each API error shows next to its field.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sign up" }).click();
  await page.getByLabel("Email").fill("not-an-email");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.locator("#field-email-error").waitFor();
  await page.locator("#field-password-error").waitFor();
  await screenshot(page, "signup-errors");

  await page.getByLabel("Email").fill(`seller-${run}@example.com`);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.waitForURL(`${baseURL}/`);

  await page.getByRole("link", { name: "Sell tickets" }).click();
  await page.getByRole("heading", { name: "Sell a ticket" }).waitFor();
  await page.getByRole("button", { name: "List ticket" }).click();
  await page.locator("#field-title-error").waitFor();
  await screenshot(page, "sell-errors");

  for (const [title, typed, tidied, shown] of [
    [concert, "25", "25.00", "$25.00"],
    [opera, "40.5", "40.50", "$40.50"],
    [jazz, "12", "12.00", "$12.00"],
    [theatre, "30", "30.00", "$30.00"],
  ]) {
    await page.goto("/tickets/new");
    await page.getByLabel("Title").fill(title);
    await page.getByLabel("Price (USD)").fill(typed);
    await page.getByLabel("Title").focus(); // leaving the price field shows it with two decimals
    assert.equal(await page.getByLabel("Price (USD)").inputValue(), tidied);
    if (title === concert) await screenshot(page, "sell-form");
    await page.getByRole("button", { name: "List ticket" }).click();
    await page.waitForURL(`${baseURL}/`);
    const row = page.getByRole("link", { name: new RegExp(escape(title)) });
    await row.waitFor();
    assert.match(await row.innerText(), new RegExp(escape(shown)));
    ticketURLs[title] = new URL(await row.getAttribute("href"), baseURL).pathname;
  }
  await screenshot(page, "home-with-tickets");

  // The seller's own ticket offers no Purchase.
  await page.goto(ticketURLs[concert]);
  await page.getByText("You are selling this ticket.").waitFor();
  assert.equal(await page.getByRole("button", { name: "Purchase" }).count(), 0);

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sign in" }).waitFor();
});

story("a buyer buys a ticket, watches the countdown, pays with the test card and sees the order complete", async () => {
  const page = await person();
  await signUp(page, `buyer-${run}@example.com`);
  await page.getByRole("link", { name: new RegExp(escape(concert)) }).click();
  await page.getByRole("heading", { name: concert }).waitFor();
  assert.equal(await page.locator(".price.big").innerText(), "$25.00");
  await screenshot(page, "ticket");

  await page.getByRole("button", { name: "Purchase" }).click();
  await page.waitForURL(/\/orders\/[0-9a-f]{24}$/);
  buyerOrderURL = new URL(page.url()).pathname;
  const countdown = page.getByTestId("countdown");
  const first = await countdown.innerText();
  assert.match(first, /^\d+:\d\d$/);
  // The countdown is live: it moves on by itself.
  await page.waitForFunction((shown) => document.querySelector('[data-testid="countdown"]')?.textContent !== shown, first);
  await screenshot(page, "order-awaiting-payment");

  await page.getByLabel(/Visa ending in 4242/).check();
  await page.getByRole("button", { name: "Pay $25.00" }).click();
  await page.getByText("Order complete.").waitFor({ timeout: 60_000 });
  assert.equal(await page.locator(".badge").innerText(), "complete");
  await screenshot(page, "order-complete");

  await page.getByRole("link", { name: "My orders" }).click();
  const row = page.getByRole("link", { name: new RegExp(escape(concert)) });
  await row.waitFor();
  assert.match(await row.innerText(), /complete/);
  await screenshot(page, "my-orders");
});

story("a second buyer finds the sold ticket gone, a third cannot take a reserved one, and a declined card is refused", async () => {
  const page = await person();
  await signUp(page, `second-${run}@example.com`);
  await waitForListing(page, concert, false);
  await waitForListing(page, opera, true);
  await screenshot(page, "home-after-sale");

  // The sold ticket's own page still answers, and says it is sold.
  await page.goto(ticketURLs[concert]);
  await page.getByText("This ticket has been sold.").waitFor();
  assert.equal(await page.getByRole("button", { name: "Purchase" }).count(), 0);
  await screenshot(page, "ticket-sold");

  // Someone else's order is not theirs to see.
  await page.goto(buyerOrderURL);
  await page.getByRole("heading", { name: "Order not available" }).waitFor();

  await page.goto(ticketURLs[opera]);
  await page.getByRole("button", { name: "Purchase" }).click();
  await page.waitForURL(/\/orders\/[0-9a-f]{24}$/);

  // While the second buyer holds the opera ticket, a third is told plainly it is reserved.
  const third = await person();
  await signUp(third, `third-${run}@example.com`);
  await third.goto(ticketURLs[opera]);
  await third.getByRole("button", { name: "Purchase" }).click();
  await third.getByRole("alert").filter({ hasText: /reserved/i }).waitFor();
  assert.match(third.url(), /\/tickets\//);
  await screenshot(third, "ticket-reserved-refused");

  await page.getByLabel(/Visa ending in 0002/).check();
  await page.getByRole("button", { name: "Pay $40.50" }).click();
  const decline = page.locator(".pay-form .alert");
  await decline.waitFor();
  assert.match(await decline.innerText(), /declined/i);
  assert.equal(await page.locator(".badge").innerText(), "awaiting payment");
  await screenshot(page, "payment-declined");
});

story("on a phone-sized screen the pages fit and signed-out visitors are asked to sign in", async () => {
  const page = await person({ width: 390, height: 844 });
  await page.goto("/");
  await page.getByRole("heading", { name: "Tickets for sale" }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await screenshot(page, "phone-home");

  // A signed-out visitor asking for their orders signs in first, and lands on them after.
  await page.goto("/orders");
  await page.getByText("Sign in to see your orders.").waitFor();
  await page.locator("main").getByRole("link", { name: "Sign in" }).click();
  await page.getByLabel("Email").fill(`buyer-${run}@example.com`);
  await page.getByLabel("Password").fill("wrong password!");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").waitFor();
  await screenshot(page, "phone-signin-refused");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${baseURL}/orders`);
  await page.getByRole("link", { name: new RegExp(escape(concert)) }).waitFor();
  await screenshot(page, "phone-my-orders");
});

story("an unpaid order shows \"Order expired\" once its countdown runs out", async () => {
  const page = await person();
  await signUp(page, `late-${run}@example.com`);
  await page.getByRole("link", { name: new RegExp(escape(theatre)) }).click();
  await page.getByRole("button", { name: "Purchase" }).click();
  await page.waitForURL(/\/orders\/[0-9a-f]{24}$/);
  await page.getByTestId("countdown").waitFor();

  // The browser's clock, not the order, moves on: 16 minutes pass for the page.
  await page.clock.install();
  await page.reload();
  await page.getByTestId("countdown").waitFor();
  await page.clock.fastForward("16:00");

  await page.getByText("Order expired.").waitFor();
  assert.equal(await page.getByTestId("countdown").count(), 0);
  assert.equal(await page.getByRole("button", { name: /^Pay/ }).count(), 0);
  assert.equal(await page.locator(".badge").innerText(), "expired");
  await screenshot(page, "order-expired");
});

// Stands in for Stripe.js v3 (the suite stays offline): a card field, and createPaymentMethod
// answering with the test PaymentMethod for a card number that is not the declined one.
const fakeStripeJS = `
window.Stripe = function (key) {
  window.stripeKey = key;
  let input;
  return {
    elements() {
      return { create() {
        return {
          mount(el) { input = document.createElement("input"); input.setAttribute("aria-label", "Card number"); el.appendChild(input); },
          destroy() { if (input) input.remove(); },
          on() {},
        };
      } };
    },
    async createPaymentMethod() {
      return input.value.endsWith("0002") ? { error: { message: "Your card was declined." } } : { paymentMethod: { id: "pm_card_visa" } };
    },
  };
};`;

story("with a publishable key, the card is collected by Stripe.js and its PaymentMethod pays the order", async () => {
  assert.deepEqual(stripeRequests, [], "pages without a publishable key loaded Stripe.js");
  const page = await person();
  // This browser is told of a key, and gets the Stripe.js stand-in from "js.stripe.com".
  await page.route("**/config.json", (route) => route.fulfill({ json: { stripePublishableKey: "pk_test_e2e" } }));
  await page.route("https://js.stripe.com/**", (route) => route.fulfill({ contentType: "text/javascript", body: fakeStripeJS }));
  const payments = [];
  page.on("request", (req) => req.url().endsWith("/api/payments") && payments.push(req.postDataJSON()));

  await signUp(page, `stripe-${run}@example.com`);
  await page.getByRole("link", { name: new RegExp(escape(jazz)) }).click();
  await page.getByRole("button", { name: "Purchase" }).click();
  await page.waitForURL(/\/orders\/[0-9a-f]{24}$/);
  const orderId = page.url().split("/").pop();
  await page.getByLabel("Card number").fill("4000000000000002");
  await page.getByRole("button", { name: "Pay $12.00" }).click();
  await page.getByText("Your card was declined.").waitFor();
  await screenshot(page, "stripe-card-declined");
  assert.deepEqual(payments, [], "a card Stripe.js refused reached payments");

  await page.getByLabel("Card number").fill("4242424242424242");
  await page.getByRole("button", { name: "Pay $12.00" }).click();
  await page.getByText("Order complete.").waitFor({ timeout: 60_000 });
  assert.deepEqual(stripeRequests, ["https://js.stripe.com/v3"]);
  assert.equal(await page.evaluate(() => window.stripeKey), "pk_test_e2e");
  assert.deepEqual(payments, [{ orderId, token: "pm_card_visa" }]);
  await screenshot(page, "stripe-order-complete");
});

story("the list of tickets pages through ten at a time, newest first", async () => {
  const page = await person();
  await signUp(page, `lister-${run}@example.com`);
  // Eleven more tickets, through the API with this browser's session cookie.
  for (let i = 1; i <= 11; i++) {
    const resp = await page.request.post("/api/tickets", { data: { title: `Paging ${run} #${i}`, price: i } });
    assert.equal(resp.status(), 201, await resp.text());
  }
  await page.goto("/");
  const rows = page.getByRole("list", { name: "Tickets" }).getByRole("link");
  await rows.first().waitFor();
  const first = await rows.allInnerTexts();
  assert.equal(first.length, 10);
  assert.match(first[0], new RegExp(`Paging ${run} #11`));
  assert.ok(await page.getByRole("button", { name: "← Previous" }).isDisabled());
  await screenshot(page, "tickets-page-1");

  await page.getByRole("button", { name: "Next →" }).click();
  await page.waitForURL(/\?after=[0-9a-f]{24}$/);
  await page.getByRole("link", { name: new RegExp(`Paging ${run} #1\\b`) }).waitFor();
  const second = await rows.allInnerTexts();
  assert.ok(second.every((row) => !first.includes(row)), "the second page repeats the first");
  await screenshot(page, "tickets-page-2");

  await page.getByRole("button", { name: "← Previous" }).click();
  await page.getByRole("link", { name: new RegExp(`Paging ${run} #11`) }).waitFor();
  assert.deepEqual(await rows.allInnerTexts(), first);
});

test("no page threw a script error", () => {
  assert.deepEqual(pageErrors, []);
});
