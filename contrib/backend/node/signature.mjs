// X-Tribute-Assistant-Signature: verifying the assistant's requests and
// signing the answer to the /health handshake.
//
// The contract is docs/backend-api.md ("Verifying the signature"); the
// `selftest` command checks this file against docs/signature-test-vectors.json.

import { createHmac, timingSafeEqual } from "node:crypto";

export const HEADER = "X-Tribute-Assistant-Signature";
// |now - t| above this is refused as stale; a (t, MAC) is remembered for twice as long.
export const TOLERANCE_SECS = 300;
const MAX_HEADER_LEN = 1024;
// One t first, then one or more v1/v2 entries of 64 lower-case hex digits; nothing else.
const GRAMMAR = /^t=(0|[1-9][0-9]{0,17})((?:,v[12]=[0-9a-f]{64})+)$/;

/** A refused signature; `code` is the `error` of the 401 answer. */
export class SignatureError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function mac(secret, prefix, body) {
  return createHmac("sha256", secret).update(prefix, "utf8").update(body).digest("hex");
}

function expected(secret, t, method, path, body) {
  return { v1: mac(secret, `${t}.`, body), v2: mac(secret, `${t}.${method}.${path}.`, body) };
}

/** The header the assistant sends (used by the self-test). */
export function signRequest(secret, t, method, path, body) {
  const e = expected(secret, String(t), method, path, body);
  return `t=${t},v1=${e.v1},v2=${e.v2}`;
}

/** The header of a signed /health answer: v1 over the answer's raw body. */
export function signAnswer(secret, t, body) {
  return `t=${t},v1=${mac(secret, `${t}.`, body)}`;
}

/**
 * Checks a request's header against every accepted secret (two while one is
 * rotated). `path` is the request line's path without the query, `body` the
 * raw bytes (a Buffer). Returns { t (the digits), secret, macs } -- remember (t, mac) for
 * each of `macs` to refuse replays -- or throws SignatureError.
 */
export function verify(secrets, header, method, path, body, nowSecs, requireV2 = false) {
  if (header === undefined) throw new SignatureError("missing_signature", `the ${HEADER} header is required`);
  const m = header.length <= MAX_HEADER_LEN ? GRAMMAR.exec(header) : null;
  if (!m) throw new SignatureError("malformed_header", `${HEADER} does not follow the grammar in backend-api.md`);
  const t = m[1];
  const entries = m[2].slice(1).split(",").map((e) => e.split("="));
  if (requireV2 && !entries.some(([k]) => k === "v2")) {
    throw new SignatureError("v2_required", "this backend accepts only v2 signatures");
  }
  const accepted = requireV2 ? ["v2"] : ["v1", "v2"];
  for (const secret of secrets) {
    const want = expected(secret, t, method, path, body);
    // timingSafeEqual: constant time, so the MAC cannot be guessed byte by byte.
    const macs = entries
      .filter(([k, v]) => accepted.includes(k) && timingSafeEqual(Buffer.from(want[k]), Buffer.from(v)))
      .map(([, v]) => v);
    if (macs.length > 0) {
      if (Math.abs(nowSecs - Number(t)) > TOLERANCE_SECS) {
        throw new SignatureError("stale_timestamp", `t is more than ${TOLERANCE_SECS} s away from our clock`);
      }
      return { t, secret, macs };
    }
  }
  throw new SignatureError("bad_signature", "no signature entry matches");
}
