#!/usr/bin/env node
// A shop backend for tribute-assistant: the receiving side of the activation
// contract (docs/backend-api.md) with a pending-order store. Node.js 20,
// built-in modules only. See README.md.
//
//   node backend.mjs serve [--listen 127.0.0.1:8787] [--base-path /api/tribute]
//   node backend.mjs add-pending ACCOUNT PRODUCT [PRICE]   (through the running server)
//   node backend.mjs add-account ACCOUNT                   (through the running server)
//   node backend.mjs dump
//   node backend.mjs selftest [VECTORS.json]

import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { log, makeServer } from "./server.mjs";
import { SignatureError, signAnswer, signRequest, verify } from "./signature.mjs";
import { Store, parsePrice } from "./store.mjs";

const SECRET_ENV = "TRIBUTE_ASSISTANT_BACKEND_SECRET";
const PREVIOUS_SECRET_ENV = "TRIBUTE_ASSISTANT_BACKEND_SECRET_PREVIOUS";
const ADMIN_TOKEN_ENV = "TRIBUTE_BACKEND_ADMIN_TOKEN";
const DB_ENV = "TRIBUTE_BACKEND_DB";
const URL_ENV = "TRIBUTE_BACKEND_URL";
/** How long requests in progress may take to finish after SIGTERM. */
const STOP_GRACE_MS = 2000;
const DEFAULT_VECTORS = resolve(dirname(fileURLToPath(import.meta.url)), "../../../docs/signature-test-vectors.json");

const OPTIONS = {
  db: { type: "string", default: process.env[DB_ENV] ?? "tribute-backend.json" },
  listen: { type: "string", default: "127.0.0.1:8787" },
  "base-path": { type: "string", default: "" },
  "secret-file": { type: "string" },
  "previous-secret-file": { type: "string" },
  "admin-token-file": { type: "string" },
  "require-v2": { type: "boolean", default: false },
  url: { type: "string", default: process.env[URL_ENV] ?? "http://127.0.0.1:8787" },
  help: { type: "boolean", short: "h", default: false },
};

const USAGE = `A shop backend for tribute-assistant (see README.md).

  node backend.mjs [--db FILE] serve [--listen HOST:PORT] [--base-path /api/tribute]
        [--secret-file F] [--previous-secret-file F] [--admin-token-file F] [--require-v2]
  node backend.mjs [--url BASE_URL] [--admin-token-file F] add-pending ACCOUNT PRODUCT [PRICE]
  node backend.mjs [--url BASE_URL] [--admin-token-file F] add-account ACCOUNT
  node backend.mjs [--db FILE] dump
  node backend.mjs selftest [VECTORS.json]

--db: the JSON store ($${DB_ENV}, default tribute-backend.json). The secret: --secret-file or $${SECRET_ENV};
the admin token: --admin-token-file or $${ADMIN_TOKEN_ENV}; --url: the server ($${URL_ENV}).
PRICE is like '5.00 EUR'; without it any price matches.`;

async function main() {
  const { values: opts, positionals } = parseArgs({ options: OPTIONS, allowPositionals: true });
  const [command, ...args] = positionals;
  const commands = { serve, "add-pending": addPending, "add-account": addAccount, dump, selftest };
  if (opts.help || !commands[command]) {
    console.error(USAGE);
    return opts.help ? 0 : 2;
  }
  try {
    return await commands[command](opts, args);
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
}

/** A secret from its file (whitespace around it dropped) or env var, as a Buffer; never printed. */
function readSecret(path, env, what) {
  const text = path ? readFileSync(path, "utf8") : process.env[env];
  if (text === undefined) return null;
  if (!text.trim()) throw new Error(`${what} is empty (${path ?? "$" + env})`);
  return Buffer.from(text.trim(), "utf8");
}

async function serve(opts) {
  const secret = readSecret(opts["secret-file"], SECRET_ENV, "the HMAC secret");
  if (!secret) throw new Error(`no secret: set ${SECRET_ENV} or --secret-file (the secret the assistant signs with)`);
  const previous = readSecret(opts["previous-secret-file"], PREVIOUS_SECRET_ENV, "the previous secret");
  const adminToken = readSecret(opts["admin-token-file"], ADMIN_TOKEN_ENV, "the admin token");
  const m = /^(.+):(\d+)$/.exec(opts.listen);
  if (!m) throw new Error(`--listen ${JSON.stringify(opts.listen)} is not HOST:PORT`);
  const basePath = opts["base-path"].replace(/\/+$/, "");
  if (basePath && !basePath.startsWith("/")) throw new Error(`--base-path ${opts["base-path"]} must start with /`);
  const store = new Store(opts.db);
  const server = makeServer({
    store,
    secrets: previous ? [secret, previous] : [secret],
    requireV2: opts["require-v2"],
    adminToken,
    basePath,
  });
  await new Promise((ok, fail) => server.once("error", fail).listen(Number(m[2]), m[1], ok));
  const { address, port } = server.address();
  // One JSON line when ready: scripts and tests read the URL from it.
  process.stdout.write(`${JSON.stringify({ url: `http://${address}:${port}${basePath}` })}\n`);
  log(
    `listening on ${address}:${port}${basePath || "/"}; store ${opts.db}; ` +
      `${opts["require-v2"] ? "v2 only" : "v1 or v2"}; admin endpoints ${adminToken ? "on" : "off"}`,
  );
  await new Promise((ok) => {
    for (const signal of ["SIGTERM", "SIGINT"]) process.once(signal, () => stop(server, ok));
  });
  log("stopped");
  return 0;
}

/**
 * Stops taking connections and lets requests in progress finish. A keep-alive
 * connection that never becomes idle in Node's eyes (a client killed in the
 * middle of a request, one that connected and sent nothing yet) would hold
 * `server.close` open for ever, so after a short grace every connection goes.
 */
function stop(server, done) {
  server.close(done);
  server.closeIdleConnections();
  setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS).unref();
}

/** Calls an admin endpoint of the running server (it owns the store file). */
async function callAdmin(opts, path, body) {
  const token = readSecret(opts["admin-token-file"], ADMIN_TOKEN_ENV, "the admin token");
  if (!token) throw new Error(`no admin token: set ${ADMIN_TOKEN_ENV} or --admin-token-file`);
  const res = await fetch(`${opts.url.replace(/\/+$/, "")}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token.toString("utf8")}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path} answered ${res.status}: ${text}`);
  console.log(text);
  return 0;
}

async function addPending(opts, [account, product, price, ...rest]) {
  if (!account || !product || rest.length) throw new Error("usage: add-pending ACCOUNT PRODUCT [PRICE]");
  return callAdmin(opts, "/admin/pending", { account_id: account, product, price: price ? parsePrice(price) : null });
}

async function addAccount(opts, [account, ...rest]) {
  if (!account || rest.length) throw new Error("usage: add-account ACCOUNT");
  return callAdmin(opts, "/admin/accounts", { account_id: account });
}

async function dump(opts) {
  console.log(JSON.stringify(new Store(opts.db).dump(), null, 2));
  return 0;
}

/**
 * Every published vector through this kit's own code: the headers we
 * compute, verify() accepting them at their t, refusing v1-only when v2 is
 * required, and refusing every negative vector as malformed_header.
 */
async function selftest(opts, [vectors = DEFAULT_VECTORS]) {
  if (!existsSync(vectors)) {
    throw new Error(
      `no signature vectors at ${vectors}: pass the file, e.g. ` +
        "`selftest /path/to/tribute-assistant/docs/signature-test-vectors.json`",
    );
  }
  const data = JSON.parse(readFileSync(vectors, "utf8"));
  const failures = [];
  let checks = 0;
  const check = (ok, what) => {
    checks += 1;
    if (!ok) failures.push(what);
  };
  const refused = (secret, header, method, path, body, now, requireV2) => {
    try {
      verify([secret], header, method, path, body, now, requireV2);
      return null;
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      return e.code;
    }
  };
  for (const v of data.vectors) {
    const secret = Buffer.from(v.secret, "utf8");
    const body = Buffer.from(v.body, "utf8");
    if (v.kind === "answer") {
      check(signAnswer(secret, v.t, body) === v.expected_header, `${v.name}: answer header`);
      continue;
    }
    check(signRequest(secret, v.t, v.method, v.path, body) === v.expected_header, `${v.name}: header`);
    for (const [header, requireV2] of [
      [v.expected_header, true],
      [v.expected_v1_header, false],
    ]) {
      try {
        verify([Buffer.from("another secret"), secret], header, v.method, v.path, body, v.t, requireV2);
        check(true, "");
      } catch (e) {
        check(false, `${v.name}: verify refused ${header} (${e.code})`);
      }
    }
    const wrong = {
      v2_required: [v.expected_v1_header, v.path, v.t, true],
      // v1 does not sign the path: only a required v2 tells another endpoint apart.
      bad_signature: [v.expected_header, `${v.path}x`, v.t, true],
      stale_timestamp: [v.expected_header, v.path, v.t + 301, false],
    };
    for (const [code, [header, path, now, requireV2]] of Object.entries(wrong)) {
      const got = refused(secret, header, v.method, path, body, now, requireV2);
      check(got === code, `${v.name}: ${got}, not ${code}`);
    }
  }
  for (const n of data.negative_vectors) {
    const got = refused(Buffer.from("whsec_test_secret"), n.header, "POST", "/activate", Buffer.from("{}"), 1700000000);
    check(got === n.error, `negative ${n.name}: ${got}, not ${n.error}`);
  }
  for (const f of failures) console.log(`FAIL ${f}`);
  console.log(`${checks - failures.length}/${checks} signature checks passed (${vectors})`);
  return failures.length ? 1 : 0;
}

process.exitCode = await main();
