// The HTTP side: POST /activate, POST /deactivate and GET /health as
// docs/backend-api.md defines them, plus the shop's own admin endpoints for
// pending orders. Every request to the assistant's endpoints is checked in
// the documented order: signature, replay, Idempotency-Key, JSON, business rules.

import { timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

import { HEADER, SignatureError, signAnswer, verify } from "./signature.mjs";
import { checkAccountId, formatPrice } from "./store.mjs";

const MAX_BODY = 64 * 1024;
const ORDER_REF = /^TA-[0-9]+-[0-9]+$/;
// HTTP status of each /activate answer (docs/backend-api.md, "The answers").
const ACTIVATE_STATUS = {
  activated: 200,
  already_activated: 200,
  no_pending_order: 404,
  already_fulfilled: 409,
  price_mismatch: 409,
  unknown_account: 422,
};

export function log(message) {
  process.stderr.write(`${new Date().toISOString().slice(0, 19)} ${message}\n`);
}

/** An answer decided before the business rules, naming what was wrong. */
class Refusal extends Error {
  constructor(http, status, code, message) {
    super(message);
    Object.assign(this, { http, status, code });
  }
}

const badRequest = (code, message) => new Refusal(400, "bad_request", code, message);

/**
 * config: { store, secrets: [current, previous?] as Buffers, requireV2,
 * adminToken: Buffer or null (admin endpoints off), basePath: "" or "/api/tribute" }
 */
export function makeServer(config) {
  const routes = {
    "POST /activate": activate,
    "POST /deactivate": deactivate,
    "GET /health": health,
    "POST /admin/accounts": adminAccount,
    "POST /admin/pending": adminPending,
  };
  return createServer(async (req, res) => {
    const path = req.url.split("?")[0];
    const base = config.basePath;
    const route = path.startsWith(base) ? routes[`${req.method} ${path.slice(base.length)}`] : undefined;
    const answer = (status, body, headers = {}) => {
      const raw = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      res.writeHead(status, { "Content-Type": "application/json", "Content-Length": raw.length, ...headers });
      res.end(raw);
    };
    try {
      if (!route) return answer(404, { error: "not_found", message: `no route for ${req.method} ${path}` });
      const body = await readBody(req);
      route({ config, req, path, body, answer });
    } catch (e) {
      if (e instanceof Refusal) return answer(e.http, { status: e.status, error: e.code, message: e.message });
      if (e instanceof SignatureError) {
        log(`${req.method} ${path}: refused signature (${e.code})`);
        return answer(401, { status: "bad_signature", error: e.code, message: e.message });
      }
      // 5xx: the assistant retries with the same key, so nothing is lost.
      log(`${req.method} ${path}: internal error: ${e.stack}`);
      answer(500, { status: "error", message: "internal error; retry later" });
    }
  });
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw badRequest("invalid_json", `the body must be at most ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

// ---- the assistant's endpoints ------------------------------------------------

/** The signature, then the replay check (docs: steps 2-5). */
function verified({ config, req, path, body }) {
  const nowSecs = Date.now() / 1000;
  const header = req.headers[HEADER.toLowerCase()];
  const v = verify(config.secrets, header, req.method, path, body, nowSecs, config.requireV2);
  if (!config.store.acceptSignature(v.t, v.macs, nowSecs)) {
    throw new SignatureError("replayed_signature", "this signature was accepted before");
  }
  return v;
}

/** Signature, replay, Idempotency-Key, JSON and the key naming the order. */
function orderBody(ctx) {
  verified(ctx);
  const key = ctx.req.headers["idempotency-key"];
  if (!key) throw badRequest("missing_idempotency_key", "the Idempotency-Key header is required");
  const obj = jsonObject(ctx.body);
  const orderRef = field(obj, "order_ref", "string");
  if (!ORDER_REF.test(orderRef)) throw badRequest("invalid_json", "order_ref must look like TA-<digits>-<digits>");
  if (orderRef !== key) throw badRequest("idempotency_key_mismatch", "Idempotency-Key must equal order_ref");
  return obj;
}

function activate(ctx) {
  const obj = orderBody(ctx);
  const accountId = field(obj, "account_id", "string");
  try {
    checkAccountId(accountId);
  } catch (e) {
    throw badRequest("invalid_json", e.message);
  }
  const product = field(obj, "product", "string");
  const price = bodyPrice(obj.price);
  field(obj, "customer", "object");
  field(obj, "received_at", "string");
  const decision = ctx.config.store.activate(obj.order_ref, accountId, product, price);
  log(
    `activate ${obj.order_ref} account=${accountId} product=${JSON.stringify(product)} price=${formatPrice(price)}` +
      ` -> ${decision.status}${decision.activation_id ? ` ${decision.activation_id}` : ""}`,
  );
  const answer = { ...decision };
  if (decision.status === "price_mismatch") {
    answer.message = "the account's open order for this product has another price";
  }
  ctx.answer(ACTIVATE_STATUS[decision.status], answer);
}

function deactivate(ctx) {
  const obj = orderBody(ctx);
  const activationId = field(obj, "activation_id", "string");
  const reason = field(obj, "reason", "string");
  const outcome = ctx.config.store.deactivate(obj.order_ref, activationId, reason);
  log(`deactivate ${obj.order_ref} ${activationId} (${reason}) -> ${outcome}`);
  ctx.answer(outcome === "not_activated" ? 404 : 200, { status: outcome });
}

function health({ config, req, path, body, answer }) {
  const header = req.headers[HEADER.toLowerCase()];
  if (header === undefined) return answer(200, { status: "ok" });
  // The handshake: no replay check (docs), the answer echoes the header and
  // is signed with the secret that verified the request.
  const v = verify(config.secrets, header, "GET", path, body, Date.now() / 1000, config.requireV2);
  const raw = Buffer.from(JSON.stringify({ request_signature: header, status: "ok" }));
  answer(200, raw, { [HEADER]: signAnswer(v.secret, Math.floor(Date.now() / 1000), raw) });
}

// ---- the shop's admin endpoints --------------------------------------------------

/** Only from this machine, only with the admin token. */
function admin({ config, req, body }) {
  if (!config.adminToken) {
    throw new Refusal(404, "refused", "not_found", "the admin endpoints are off: no admin token is set");
  }
  const from = req.socket.remoteAddress ?? "";
  if (!(from.startsWith("127.") || from === "::1" || from.startsWith("::ffff:127."))) {
    throw new Refusal(403, "refused", "forbidden", "the admin endpoints answer this machine only");
  }
  const given = Buffer.from((req.headers.authorization ?? "").replace(/^Bearer /, ""));
  if (given.length !== config.adminToken.length || !timingSafeEqual(given, config.adminToken)) {
    throw new Refusal(401, "refused", "unauthorized", "send Authorization: Bearer <admin token>");
  }
  return jsonObject(body);
}

function adminAccount(ctx) {
  const accountId = field(admin(ctx), "account_id", "string");
  try {
    ctx.config.store.addAccount(accountId);
  } catch (e) {
    throw badRequest("invalid_value", e.message);
  }
  log(`account ${accountId} known`);
  ctx.answer(201, { account_id: accountId });
}

function adminPending(ctx) {
  const obj = admin(ctx);
  const accountId = field(obj, "account_id", "string");
  const product = field(obj, "product", "string");
  const price = obj.price == null ? null : bodyPrice(obj.price);
  let pendingId;
  try {
    pendingId = ctx.config.store.addPending(accountId, product, price);
  } catch (e) {
    throw badRequest("invalid_value", e.message);
  }
  const what = `account=${accountId} product=${JSON.stringify(product)} price=${formatPrice(price)}`;
  log(`pending order ${pendingId}: ${what}`);
  ctx.answer(201, { pending_id: pendingId, account_id: accountId, product: product.trim() });
}

// ---- reading bodies ----------------------------------------------------------------

function jsonObject(body) {
  let obj;
  try {
    obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (e) {
    throw badRequest("invalid_json", `the body is not JSON: ${e.message}`);
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw badRequest("invalid_json", "the body must be a JSON object");
  }
  return obj;
}

function field(obj, name, type) {
  const value = obj[name];
  if (typeof value !== type || value === null) throw badRequest("invalid_json", `${name} is missing or not a ${type}`);
  return value;
}

/** A price as the activation body spells it: {"amount_minor": 500, "currency": "EUR"}. */
function bodyPrice(obj) {
  if (obj === null || typeof obj !== "object") throw badRequest("invalid_json", "price must be an object");
  const amount = field(obj, "amount_minor", "number");
  const currency = field(obj, "currency", "string");
  if (!Number.isSafeInteger(amount) || amount < 1 || !/^[A-Z]{3}$/.test(currency)) {
    throw badRequest("invalid_json", "price needs an integer amount_minor >= 1 and a currency like EUR");
  }
  return { amount_minor: amount, currency };
}
