"""X-Tribute-Assistant-Signature: verifying the assistant's requests and
signing the answer to the /health handshake.

The contract is docs/backend-api.md ("Verifying the signature"); the
`selftest` command checks this file against docs/signature-test-vectors.json.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass

HEADER = "X-Tribute-Assistant-Signature"
# |now - t| above this is refused as stale; a (t, MAC) is remembered for twice as long.
TOLERANCE_SECS = 300
MAX_HEADER_LEN = 1024
# One t first, then one or more v1/v2 entries of 64 lower-case hex digits; nothing else.
_GRAMMAR = re.compile(r"t=(0|[1-9][0-9]{0,17})((?:,v[12]=[0-9a-f]{64})+)")


class SignatureError(Exception):
    """A refused signature. `code` is the `error` of the 401 answer."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Verified:
    t: int
    # The secret that matched: the /health answer is signed with it.
    secret: bytes
    # Every entry that matched: remember (t, mac) for each to refuse replays.
    macs: tuple


def _mac(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def _expected(secret: bytes, t: str, method: str, path: str, body: bytes) -> dict:
    return {
        "v1": _mac(secret, f"{t}.".encode() + body),
        "v2": _mac(secret, f"{t}.{method}.{path}.".encode() + body),
    }


def sign_request(secret: bytes, t: int, method: str, path: str, body: bytes) -> str:
    """The header the assistant sends (used by the self-test)."""
    e = _expected(secret, str(t), method, path, body)
    return f"t={t},v1={e['v1']},v2={e['v2']}"


def sign_answer(secret: bytes, t: int, body: bytes) -> str:
    """The header of a signed /health answer: v1 over the answer's raw body."""
    return f"t={t},v1={_mac(secret, f'{t}.'.encode() + body)}"


def verify(secrets, header, method: str, path: str, body: bytes, now: float, require_v2: bool = False) -> Verified:
    """Checks a request's header against every accepted secret (two while
    one is rotated). `path` is the request line's path without the query,
    `body` the raw bytes. Raises SignatureError; the replay check is the
    caller's (it needs the store)."""
    if header is None:
        raise SignatureError("missing_signature", f"the {HEADER} header is required")
    m = _GRAMMAR.fullmatch(header) if len(header) <= MAX_HEADER_LEN else None
    if not m:
        raise SignatureError("malformed_header", f"{HEADER} does not follow the grammar in backend-api.md")
    t = m.group(1)
    entries = [tuple(e.split("=", 1)) for e in m.group(2)[1:].split(",")]
    if require_v2 and not any(k == "v2" for k, _ in entries):
        raise SignatureError("v2_required", "this backend accepts only v2 signatures")
    accepted = ("v2",) if require_v2 else ("v1", "v2")
    for secret in secrets:
        expected = _expected(secret, t, method, path, body)
        # compare_digest: constant time, so the MAC cannot be guessed byte by byte.
        matched = tuple(v for k, v in entries if k in accepted and hmac.compare_digest(expected[k], v))
        if matched:
            break
    else:
        raise SignatureError("bad_signature", "no signature entry matches")
    if abs(now - int(t)) > TOLERANCE_SECS:
        raise SignatureError("stale_timestamp", f"t is more than {TOLERANCE_SECS} s away from our clock")
    return Verified(int(t), secret, matched)
