#!/usr/bin/env python3
"""A shop backend for tribute-assistant: the receiving side of the
activation contract (docs/backend-api.md) with a pending-order store.
Python 3.11, standard library only. See README.md.

    backend.py serve [--listen 127.0.0.1:8787] [--base-path /api/tribute]
    backend.py add-pending ACCOUNT PRODUCT [PRICE]
    backend.py add-account ACCOUNT
    backend.py dump
    backend.py selftest [VECTORS.json]
"""

import argparse
import json
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path

import server
from signature import SignatureError, sign_answer, sign_request, verify
from store import Store, parse_price

SECRET_ENV = "TRIBUTE_ASSISTANT_BACKEND_SECRET"
PREVIOUS_SECRET_ENV = "TRIBUTE_ASSISTANT_BACKEND_SECRET_PREVIOUS"
ADMIN_TOKEN_ENV = "TRIBUTE_BACKEND_ADMIN_TOKEN"
DB_ENV = "TRIBUTE_BACKEND_DB"
DEFAULT_VECTORS = Path(__file__).resolve().parents[3] / "docs" / "signature-test-vectors.json"


def main() -> int:
    p = argparse.ArgumentParser(description="A shop backend for tribute-assistant (see README.md).")
    p.add_argument("--db", default=os.environ.get(DB_ENV, "tribute-backend.sqlite3"), help=f"SQLite file (${DB_ENV})")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="answer the assistant's requests")
    s.add_argument("--listen", default="127.0.0.1:8787", help="HOST:PORT (port 0: a free one)")
    s.add_argument("--base-path", default="", help="the path of the URL the assistant is given, e.g. /api/tribute")
    s.add_argument("--secret-file", help=f"the HMAC secret shared with the assistant (else ${SECRET_ENV})")
    s.add_argument("--previous-secret-file", help=f"the old secret, while it is rotated (else ${PREVIOUS_SECRET_ENV})")
    s.add_argument("--admin-token-file", help=f"token for the /admin endpoints (else ${ADMIN_TOKEN_ENV}; none: off)")
    s.add_argument("--require-v2", action="store_true", help="accept only v2 signatures (method and path signed)")
    a = sub.add_parser("add-pending", help="the customer picked a package: one pending order")
    a.add_argument("account")
    a.add_argument("product")
    a.add_argument("price", nargs="?", help="e.g. '5.00 EUR'; without it any price matches")
    c = sub.add_parser("add-account", help="a known account without pending orders")
    c.add_argument("account")
    sub.add_parser("dump", help="print accounts, pending orders and activations as JSON")
    t = sub.add_parser("selftest", help="check the signature code against the published vectors")
    t.add_argument("vectors", nargs="?", default=str(DEFAULT_VECTORS))
    args = p.parse_args()
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except sqlite3.Error as e:
        print(f"error: the store {args.db}: {e}", file=sys.stderr)
        return 2


def serve(args) -> int:
    secret = read_secret(args.secret_file, SECRET_ENV, "the HMAC secret")
    if secret is None:
        raise ValueError(f"no secret: set {SECRET_ENV} or --secret-file (the secret the assistant signs with)")
    previous = read_secret(args.previous_secret_file, PREVIOUS_SECRET_ENV, "the previous secret")
    admin = read_secret(args.admin_token_file, ADMIN_TOKEN_ENV, "the admin token")
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--listen {args.listen!r} is not HOST:PORT")
    base = args.base_path.rstrip("/")
    if base and not base.startswith("/"):
        raise ValueError(f"--base-path {args.base_path!r} must start with /")
    config = server.Config(
        store=Store(args.db),
        secrets=[secret] + ([previous] if previous else []),
        require_v2=args.require_v2,
        admin_token=admin,
        base_path=base,
    )
    httpd = server.serve(host, int(port), config)
    bound_host, bound_port = httpd.server_address[:2]
    # One JSON line when ready: scripts and tests read the URL from it.
    print(json.dumps({"url": f"http://{bound_host}:{bound_port}{base}"}), flush=True)
    server.log(
        f"listening on {bound_host}:{bound_port}{base or '/'}; store {args.db}; "
        f"{'v2 only' if args.require_v2 else 'v1 or v2'}; admin endpoints {'on' if admin else 'off'}"
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    server.log("stopped")
    return 0


def read_secret(path, env: str, what: str):
    """A secret from its file (whitespace around it dropped) or env var, as bytes; never printed."""
    text = Path(path).read_text(encoding="utf-8") if path else os.environ.get(env)
    if text is None:
        return None
    if not text.strip():
        raise ValueError(f"{what} is empty ({path or '$' + env})")
    return text.strip().encode()


def add_pending(args) -> int:
    price = parse_price(args.price) if args.price else None
    pending_id = Store(args.db).add_pending(args.account, args.product, price)
    print(json.dumps({"pending_id": pending_id, "account_id": args.account, "product": args.product.strip()}))
    return 0


def add_account(args) -> int:
    Store(args.db).add_account(args.account)
    print(json.dumps({"account_id": args.account}))
    return 0


def dump(args) -> int:
    print(json.dumps(Store(args.db).dump(), ensure_ascii=False, indent=2))
    return 0


def selftest(args) -> int:
    """Every published vector through this kit's own code: the headers we
    compute, verify() accepting them at their t, refusing v1-only when v2 is
    required, and refusing every negative vector as malformed_header."""
    path = Path(args.vectors)
    if not path.is_file():
        raise ValueError(
            f"no signature vectors at {path}: pass the file, e.g. "
            "`selftest /path/to/tribute-assistant/docs/signature-test-vectors.json`"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    failures, checks = [], 0

    def check(ok: bool, what: str):
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(what)

    for v in data["vectors"]:
        secret, body, name = v["secret"].encode(), v["body"].encode(), v["name"]
        if v["kind"] == "answer":
            check(sign_answer(secret, v["t"], body) == v["expected_header"], f"{name}: answer header")
            continue
        method, path = v["method"], v["path"]
        check(sign_request(secret, v["t"], method, path, body) == v["expected_header"], f"{name}: header")
        for header, require_v2 in ((v["expected_header"], True), (v["expected_v1_header"], False)):
            try:
                verify([b"another secret", secret], header, method, path, body, v["t"], require_v2)
                check(True, "")
            except SignatureError as e:
                check(False, f"{name}: verify refused {header!r} ({e.code})")
        wrong = {
            "v2_required": (v["expected_v1_header"], path, v["t"], True),
            # v1 does not sign the path: only a required v2 tells another endpoint apart.
            "bad_signature": (v["expected_header"], path + "x", v["t"], True),
            "stale_timestamp": (v["expected_header"], path, v["t"] + 301, False),
        }
        for code, (header, at, now, require_v2) in wrong.items():
            got = refused(secret, header, method, at, body, now, require_v2)
            check(got == code, f"{name}: {got}, not {code}")
    for n in data["negative_vectors"]:
        code = refused(b"whsec_test_secret", n["header"], "POST", "/activate", b"{}", 1700000000, False)
        check(code == n["error"], f"negative {n['name']}: {code}, not {n['error']}")
    for f in failures:
        print(f"FAIL {f}")
    print(f"{checks - len(failures)}/{checks} signature checks passed ({args.vectors})")
    return 1 if failures else 0


def refused(secret, header, method, path, body, now, require_v2):
    """The error code verify() refuses with, or None if it accepts."""
    try:
        verify([secret], header, method, path, body, now, require_v2)
        return None
    except SignatureError as e:
        return e.code


COMMANDS = {"serve": serve, "add-pending": add_pending, "add-account": add_account, "dump": dump, "selftest": selftest}

if __name__ == "__main__":
    sys.exit(main())
