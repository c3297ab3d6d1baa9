"""The HTTP side: POST /activate, POST /deactivate and GET /health as
docs/backend-api.md defines them, plus the shop's own admin endpoints for
pending orders. Every request to the assistant's endpoints is checked in the
documented order: signature, replay, Idempotency-Key, JSON, business rules.
"""

import hmac
import ipaddress
import json
import re
import sys
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from signature import HEADER, SignatureError, sign_answer, verify
from store import Price, Store, check_account_id

MAX_BODY = 64 * 1024
ORDER_REF = re.compile(r"TA-[0-9]+-[0-9]+")
# HTTP status of each /activate answer (docs/backend-api.md, "The answers").
ACTIVATE_STATUS = {
    "activated": 200,
    "already_activated": 200,
    "no_pending_order": 404,
    "already_fulfilled": 409,
    "price_mismatch": 409,
    "unknown_account": 422,
}


@dataclass
class Config:
    store: Store
    # The current secret first; the previous one too while it is rotated.
    secrets: list
    require_v2: bool = False
    # None: the admin endpoints answer 404.
    admin_token: Optional[bytes] = None
    # The path the assistant's base URL has, e.g. /api/tribute ('' at the root).
    base_path: str = ""


class Refusal(Exception):
    """An answer decided before the business rules: its HTTP status, the
    body's `status` and `error` code, and a message naming what was wrong."""

    def __init__(self, http: int, status: str, code: str, message: str):
        super().__init__(message)
        self.http, self.status, self.code, self.message = http, status, code, message


def bad_request(code: str, message: str) -> Refusal:
    return Refusal(400, "bad_request", code, message)


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def serve(host: str, port: int, config: Config) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"config": config})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


class Handler(BaseHTTPRequestHandler):
    config: Config
    server_version = "tribute-backend-kit/1"

    # ---- routing -------------------------------------------------------------

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        routes = {
            "/activate": self.activate,
            "/deactivate": self.deactivate,
            "/admin/accounts": self.admin_account,
            "/admin/pending": self.admin_pending,
        }
        self.dispatch(path, routes)

    def do_GET(self):
        self.dispatch(self.path.split("?", 1)[0], {"/health": self.health})

    def dispatch(self, path: str, routes: dict) -> None:
        base = self.config.base_path
        route = routes.get(path[len(base) :]) if path.startswith(base) else None
        if route is None:
            return self.answer(404, {"error": "not_found", "message": f"no route for {self.command} {path}"})
        try:
            body = self.read_body()
            route(path, body)
        except Refusal as e:
            self.answer(e.http, {"status": e.status, "error": e.code, "message": e.message})
        except SignatureError as e:
            log(f"{self.command} {path}: refused signature ({e.code})")
            self.answer(401, {"status": "bad_signature", "error": e.code, "message": e.message})
        except Exception:
            # 5xx: the assistant retries with the same key, so nothing is lost.
            log(f"{self.command} {path}: internal error")
            traceback.print_exc()
            self.answer(500, {"status": "error", "message": "internal error; retry later"})

    def read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit() or int(length) > MAX_BODY:
            raise bad_request("invalid_json", f"the body must be at most {MAX_BODY} bytes")
        return self.rfile.read(int(length))

    # ---- the assistant's endpoints ---------------------------------------------

    def verified(self, path: str, body: bytes):
        """The signature, then the replay check (docs: steps 2-5)."""
        now = time.time()
        v = verify(self.config.secrets, self.headers.get(HEADER), self.command, path, body, now, self.config.require_v2)
        if not self.config.store.accept_signature(v.t, v.macs, now):
            raise SignatureError("replayed_signature", "this signature was accepted before")
        return v

    def order_body(self, path: str, body: bytes) -> dict:
        """Signature, replay, Idempotency-Key, JSON and the key naming the order."""
        self.verified(path, body)
        key = self.headers.get("Idempotency-Key")
        if not key:
            raise bad_request("missing_idempotency_key", "the Idempotency-Key header is required")
        obj = json_object(body)
        order_ref = field(obj, "order_ref", str)
        if not ORDER_REF.fullmatch(order_ref):
            raise bad_request("invalid_json", "order_ref must look like TA-<digits>-<digits>")
        if order_ref != key:
            raise bad_request("idempotency_key_mismatch", "Idempotency-Key must equal order_ref")
        return obj

    def activate(self, path: str, body: bytes) -> None:
        obj = self.order_body(path, body)
        account_id = field(obj, "account_id", str)
        try:
            check_account_id(account_id)
        except ValueError as e:
            raise bad_request("invalid_json", str(e))
        product = field(obj, "product", str)
        price = body_price(obj.get("price"))
        field(obj, "customer", dict)
        field(obj, "received_at", str)
        decision = self.config.store.activate(obj["order_ref"], account_id, product, price)
        log(
            f"activate {obj['order_ref']} account={account_id} product={product!r} price={price}"
            f" -> {decision.status} {decision.activation_id or ''}".rstrip()
        )
        answer = {"status": decision.status}
        if decision.activation_id:
            answer["activation_id"] = decision.activation_id
        if decision.status == "price_mismatch":
            answer["message"] = "the account's open order for this product has another price"
        self.answer(ACTIVATE_STATUS[decision.status], answer)

    def deactivate(self, path: str, body: bytes) -> None:
        obj = self.order_body(path, body)
        activation_id = field(obj, "activation_id", str)
        reason = field(obj, "reason", str)
        outcome = self.config.store.deactivate(obj["order_ref"], activation_id, reason)
        log(f"deactivate {obj['order_ref']} {activation_id} ({reason}) -> {outcome}")
        self.answer(404 if outcome == "not_activated" else 200, {"status": outcome})

    def health(self, path: str, body: bytes) -> None:
        header = self.headers.get(HEADER)
        if header is None:
            return self.answer(200, {"status": "ok"})
        # The handshake: no replay check (docs), the answer echoes the header
        # and is signed with the secret that verified the request.
        v = verify(self.config.secrets, header, "GET", path, body, time.time(), self.config.require_v2)
        raw = json.dumps({"request_signature": header, "status": "ok"}, separators=(",", ":")).encode()
        self.answer(200, raw, {HEADER: sign_answer(v.secret, int(time.time()), raw)})

    # ---- the shop's admin endpoints ----------------------------------------------

    def admin(self, body: bytes) -> dict:
        """Only from this machine, only with the admin token."""
        if self.config.admin_token is None:
            raise Refusal(404, "refused", "not_found", "the admin endpoints are off: no admin token is set")
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            raise Refusal(403, "refused", "forbidden", "the admin endpoints answer this machine only")
        given = self.headers.get("Authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(given, self.config.admin_token):
            raise Refusal(401, "refused", "unauthorized", "send Authorization: Bearer <admin token>")
        return json_object(body)

    def admin_account(self, path: str, body: bytes) -> None:
        account_id = field(self.admin(body), "account_id", str)
        try:
            self.config.store.add_account(account_id)
        except ValueError as e:
            raise bad_request("invalid_value", str(e))
        log(f"account {account_id} known")
        self.answer(201, {"account_id": account_id})

    def admin_pending(self, path: str, body: bytes) -> None:
        obj = self.admin(body)
        account_id, product = field(obj, "account_id", str), field(obj, "product", str)
        price = None if obj.get("price") is None else body_price(obj["price"])
        try:
            pending_id = self.config.store.add_pending(account_id, product, price)
        except ValueError as e:
            raise bad_request("invalid_value", str(e))
        log(f"pending order {pending_id}: account={account_id} product={product!r} price={price or 'any'}")
        self.answer(201, {"pending_id": pending_id, "account_id": account_id, "product": product.strip()})

    # ---- answering -------------------------------------------------------------

    def answer(self, status: int, body, headers: Optional[dict] = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            # What was decided is committed; the assistant asks again with the same key.
            log(f"{self.command} {self.path}: the client left before the answer")

    def log_message(self, format, *args):
        # The request lines are logged by the handlers, with what was decided.
        pass


def json_object(body: bytes) -> dict:
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad_request("invalid_json", f"the body is not JSON: {e}")
    if not isinstance(obj, dict):
        raise bad_request("invalid_json", "the body must be a JSON object")
    return obj


def field(obj: dict, name: str, kind: type):
    value = obj.get(name)
    # bool is an int in Python; a JSON true is never a number here.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise bad_request("invalid_json", f"{name} is missing or not a {kind.__name__}")
    return value


def body_price(obj) -> Price:
    """A price as the activation body spells it: {"amount_minor": 500, "currency": "EUR"}."""
    if not isinstance(obj, dict):
        raise bad_request("invalid_json", "price must be an object")
    amount, currency = field(obj, "amount_minor", int), field(obj, "currency", str)
    if amount < 1 or not re.fullmatch(r"[A-Z]{3}", currency):
        raise bad_request("invalid_json", "price needs amount_minor >= 1 and a currency like EUR")
    return Price(amount, currency)
