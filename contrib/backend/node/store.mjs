// The shop's books in one JSON file: accounts, pending orders, activations
// (by Idempotency-Key) and the signatures already accepted.
//
// A pending order is what the shop's checkout writes when a customer picks a
// package and is sent to Tribute to pay; an activation consumes one. Node 20
// has no built-in SQLite, so the whole file is rewritten atomically (a
// temporary file, fsync, rename) before a request is answered: a crash
// leaves the old or the new file, never half of one. One server process owns
// the file; the admin endpoints (and the CLI through them) add to it.
// Replace `accounts` with a look-up in your users table when you adopt this.

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";

const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const CURRENCIES = ["EUR", "USD", "RUB", "GBP", "UAH", "KZT"];
// A replayed (t, MAC) is refused for this long; older ones are stale anyway.
const SEEN_SIGNATURE_SECS = 600;

/** `5.00 EUR`, `5EUR` or `12.5 usd` (every supported currency has cents). */
export function parsePrice(text) {
  const m = /^\s*(\d{1,12})(?:\.(\d{1,2}))?\s*([A-Za-z]{3})\s*$/.exec(text);
  if (!m || !CURRENCIES.includes(m[3].toUpperCase())) {
    throw new Error(`price ${JSON.stringify(text)} is not like '5.00 EUR' (currencies: ${CURRENCIES.join(", ")})`);
  }
  const amount = Number(m[1]) * 100 + Number((m[2] ?? "0").padEnd(2, "0"));
  if (amount < 1) throw new Error(`price ${JSON.stringify(text)} must be more than zero`);
  return { amount_minor: amount, currency: m[3].toUpperCase() };
}

export function formatPrice(price) {
  if (!price) return "any";
  const cents = String(price.amount_minor % 100).padStart(2, "0");
  return `${Math.floor(price.amount_minor / 100)}.${cents} ${price.currency}`;
}

export function checkAccountId(accountId) {
  if (typeof accountId !== "string" || !ACCOUNT_ID.test(accountId)) {
    throw new Error(`account ID ${JSON.stringify(accountId)} must be 1-64 ASCII letters, digits, '-' or '_'`);
  }
}

const productKey = (product) => product.trim().toLowerCase();
const now = () => Date.now();

export class Store {
  constructor(path) {
    this.path = path;
    this.data = { version: 1, next_pending_id: 1, accounts: {}, pending: [], activations: {}, seen_signatures: [] };
    if (existsSync(path)) {
      try {
        this.data = JSON.parse(readFileSync(path, "utf8"));
      } catch (e) {
        throw new Error(`the store ${path} cannot be read: ${e.message}`);
      }
    }
  }

  /**
   * Applies `change` to a copy of the books and writes the copy before it
   * becomes the books: if the write fails, nothing changed.
   */
  #commit(change) {
    const next = structuredClone(this.data);
    const result = change(next);
    const tmp = `${this.path}.tmp-${process.pid}`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify(next, null, 1));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dir = openSync(dirname(this.path), "r");
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    this.data = next;
    return result;
  }

  // ---- what the shop's checkout (through the admin endpoints) writes --------

  addAccount(accountId) {
    checkAccountId(accountId);
    if (this.data.accounts[accountId]) return;
    this.#commit((d) => {
      d.accounts[accountId] = { created_at: now() };
    });
  }

  /** One pending order: the customer picked `product` on `accountId` and was sent to Tribute to pay. */
  addPending(accountId, product, price = null) {
    checkAccountId(accountId);
    if (typeof product !== "string" || !product.trim()) throw new Error("the product name is empty");
    return this.#commit((d) => {
      d.accounts[accountId] ??= { created_at: now() };
      const id = d.next_pending_id++;
      d.pending.push({
        id,
        account_id: accountId,
        product: product.trim(),
        product_key: productKey(product),
        price,
        created_at: now(),
        fulfilled_by: null,
        fulfilled_at: null,
      });
      return id;
    });
  }

  // ---- what the assistant's requests do --------------------------------------

  /**
   * Remembers the (t, MAC) pairs that verified; false if any of them was
   * accepted before (a replay, however the header was spelled).
   */
  acceptSignature(t, macs, nowSecs) {
    const seen = this.data.seen_signatures;
    if (macs.some((mac) => seen.some(([st, sm]) => st === t && sm === mac))) return false;
    this.#commit((d) => {
      d.seen_signatures = d.seen_signatures.filter(([st]) => Number(st) >= nowSecs - SEEN_SIGNATURE_SECS);
      d.seen_signatures.push(...macs.map((mac) => [t, mac]));
    });
    return true;
  }

  /**
   * The activation rules, in order:
   * 1. this Idempotency-Key was activated before → already_activated, same id;
   * 2. no such account → unknown_account;
   * 3. the oldest open pending order of this account for this product (and
   *    price, if it has one) → consume it: activated;
   * 4. an open one at another price → price_mismatch (a person decides);
   * 5. one of this account for this product was fulfilled → already_fulfilled
   *    (most likely the customer paid twice);
   * 6. else → no_pending_order.
   */
  activate(orderRef, accountId, product, price) {
    const earlier = this.data.activations[orderRef];
    if (earlier) return { status: "already_activated", activation_id: earlier.activation_id };
    if (!this.data.accounts[accountId]) return { status: "unknown_account" };
    const key = productKey(product);
    const mine = this.data.pending.filter((p) => p.account_id === accountId && p.product_key === key);
    const open = mine.filter((p) => p.fulfilled_by === null);
    const match = open.find(
      (p) => p.price === null || (p.price.amount_minor === price.amount_minor && p.price.currency === price.currency),
    );
    if (!match) {
      if (open.length > 0) return { status: "price_mismatch" };
      return { status: mine.length > 0 ? "already_fulfilled" : "no_pending_order" };
    }
    const activationId = `act-${String(match.id).padStart(6, "0")}`;
    // YOUR SHOP: credit the product inside this commit (e.g. d.balances[accountId] += 100),
    // so it is written with the activation or not at all.
    this.#commit((d) => {
      const p = d.pending.find((x) => x.id === match.id);
      p.fulfilled_by = orderRef;
      p.fulfilled_at = now();
      d.activations[orderRef] = {
        activation_id: activationId,
        pending_id: match.id,
        account_id: accountId,
        product,
        price,
        activated_at: now(),
        deactivated_at: null,
        deactivation_reason: null,
      };
    });
    return { status: "activated", activation_id: activationId };
  }

  /** deactivated, already_deactivated or not_activated (no activation with this key and id). */
  deactivate(orderRef, activationId, reason) {
    const a = this.data.activations[orderRef];
    if (!a || a.activation_id !== activationId) return "not_activated";
    if (a.deactivated_at !== null) return "already_deactivated";
    // YOUR SHOP: take the product back inside this commit.
    this.#commit((d) => {
      d.activations[orderRef].deactivated_at = now();
      d.activations[orderRef].deactivation_reason = reason;
    });
    return "deactivated";
  }

  /** Everything, in the same shape as the Python kit's `dump`. */
  dump() {
    const d = this.data;
    return {
      accounts: Object.keys(d.accounts).sort(),
      pending: d.pending.map((p) => ({
        id: p.id,
        account_id: p.account_id,
        product: p.product,
        price: p.price,
        fulfilled_by: p.fulfilled_by,
      })),
      activations: Object.entries(d.activations)
        .sort(([ka, a], [kb, b]) => a.activated_at - b.activated_at || ka.localeCompare(kb))
        .map(([orderRef, a]) => ({
          order_ref: orderRef,
          activation_id: a.activation_id,
          pending_id: a.pending_id,
          account_id: a.account_id,
          product: a.product,
          deactivated: a.deactivated_at !== null,
        })),
    };
  }
}
