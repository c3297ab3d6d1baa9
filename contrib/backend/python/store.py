"""The shop's books in one SQLite file: accounts, pending orders, activations
(by Idempotency-Key) and the signatures already accepted.

A pending order is what the shop's checkout writes when a customer picks a
package and is sent to Tribute to pay; an activation consumes one. Every
decision is one IMMEDIATE transaction, so two requests for the same order
(the assistant retries after a lost answer) cannot both consume one.
Replace `accounts` with a look-up in your users table when you adopt this.
"""

import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CURRENCIES = ("EUR", "USD", "RUB", "GBP", "UAH", "KZT")
# A replayed (t, MAC) is refused for this long; older ones are stale anyway.
SEEN_SIGNATURE_SECS = 600

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id  TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_orders (
    id           INTEGER PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(account_id),
    product      TEXT NOT NULL,
    -- what is matched: the product name trimmed and case-folded
    product_key  TEXT NOT NULL,
    -- NULL: any price is fine; else the payment must be exactly this
    amount_minor INTEGER,
    currency     TEXT,
    created_at   INTEGER NOT NULL,
    -- the order_ref (Idempotency-Key) of the activation that consumed it
    fulfilled_by TEXT UNIQUE,
    fulfilled_at INTEGER
);
CREATE INDEX IF NOT EXISTS pending_by_account ON pending_orders(account_id, product_key);
CREATE TABLE IF NOT EXISTS activations (
    order_ref           TEXT PRIMARY KEY,
    activation_id       TEXT NOT NULL UNIQUE,
    pending_id          INTEGER NOT NULL UNIQUE REFERENCES pending_orders(id),
    account_id          TEXT NOT NULL,
    product             TEXT NOT NULL,
    amount_minor        INTEGER NOT NULL,
    currency            TEXT NOT NULL,
    activated_at        INTEGER NOT NULL,
    deactivated_at      INTEGER,
    deactivation_reason TEXT
);
CREATE TABLE IF NOT EXISTS seen_signatures (
    t       INTEGER NOT NULL,
    mac     TEXT NOT NULL,
    PRIMARY KEY (t, mac)
);
"""


@dataclass(frozen=True)
class Price:
    amount_minor: int
    currency: str

    def __str__(self):
        return f"{self.amount_minor // 100}.{self.amount_minor % 100:02d} {self.currency}"


def parse_price(text: str) -> Price:
    """`5.00 EUR`, `5EUR` or `12.5 usd` (every supported currency has cents)."""
    m = re.fullmatch(r"\s*(\d{1,12})(?:\.(\d{1,2}))?\s*([A-Za-z]{3})\s*", text)
    if not m or m.group(3).upper() not in CURRENCIES:
        raise ValueError(f"price {text!r} is not like '5.00 EUR' (currencies: {', '.join(CURRENCIES)})")
    cents = int((m.group(2) or "0").ljust(2, "0"))
    amount = int(m.group(1)) * 100 + cents
    if amount < 1:
        raise ValueError(f"price {text!r} must be more than zero")
    return Price(amount, m.group(3).upper())


def product_key(product: str) -> str:
    return product.strip().casefold()


@dataclass(frozen=True)
class Decision:
    """What /activate answers: `status` and, for a success, the activation id."""

    status: str
    activation_id: Optional[str] = None


class Store:
    def __init__(self, path: str):
        self.path = path
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode: transactions are the explicit BEGIN IMMEDIATE below.
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    @contextmanager
    def _tx(self):
        """One write transaction, taken at its start (IMMEDIATE), so a check
        and the write it leads to cannot interleave with another request."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # ---- what the shop's checkout (or the admin commands) writes -------------

    def add_account(self, account_id: str) -> None:
        check_account_id(account_id)
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO accounts (account_id, created_at) VALUES (?, ?)", (account_id, _now_ms())
            )

    def add_pending(self, account_id: str, product: str, price: Optional[Price] = None) -> int:
        """One pending order: the customer picked `product` on `account_id`
        and was sent to Tribute to pay. Makes the account known."""
        check_account_id(account_id)
        if not product.strip():
            raise ValueError("the product name is empty")
        now = _now_ms()
        with self._tx() as conn:
            conn.execute("INSERT OR IGNORE INTO accounts (account_id, created_at) VALUES (?, ?)", (account_id, now))
            cur = conn.execute(
                "INSERT INTO pending_orders (account_id, product, product_key, amount_minor, currency, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    account_id,
                    product.strip(),
                    product_key(product),
                    price.amount_minor if price else None,
                    price.currency if price else None,
                    now,
                ),
            )
            return cur.lastrowid

    # ---- what the assistant's requests do --------------------------------------

    def accept_signature(self, t: int, macs, now: float) -> bool:
        """Remembers the (t, MAC) pairs that verified; False if any of them
        was accepted before (a replay, however the header was spelled)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM seen_signatures WHERE t < ?", (int(now) - SEEN_SIGNATURE_SECS,))
            for mac in macs:
                if conn.execute("SELECT 1 FROM seen_signatures WHERE t = ? AND mac = ?", (t, mac)).fetchone():
                    return False
            conn.executemany("INSERT INTO seen_signatures (t, mac) VALUES (?, ?)", [(t, mac) for mac in macs])
            return True

    def activate(self, order_ref: str, account_id: str, product: str, price: Price) -> Decision:
        """The activation rules, in order:
        1. this Idempotency-Key was activated before → already_activated, same id;
        2. no such account → unknown_account;
        3. the oldest open pending order of this account for this product
           (and price, if it has one) → consume it: activated;
        4. an open one at another price → price_mismatch (a person decides);
        5. one of this account for this product was fulfilled → already_fulfilled
           (most likely the customer paid twice);
        6. else → no_pending_order."""
        key = product_key(product)
        with self._tx() as conn:
            row = conn.execute("SELECT activation_id FROM activations WHERE order_ref = ?", (order_ref,)).fetchone()
            if row:
                return Decision("already_activated", row["activation_id"])
            if not conn.execute("SELECT 1 FROM accounts WHERE account_id = ?", (account_id,)).fetchone():
                return Decision("unknown_account")
            open_orders = conn.execute(
                "SELECT id, amount_minor, currency FROM pending_orders"
                " WHERE account_id = ? AND product_key = ? AND fulfilled_by IS NULL ORDER BY id",
                (account_id, key),
            ).fetchall()
            match = next(
                (
                    r
                    for r in open_orders
                    if r["amount_minor"] is None
                    or (r["amount_minor"] == price.amount_minor and r["currency"] == price.currency)
                ),
                None,
            )
            if match is None:
                if open_orders:
                    return Decision("price_mismatch")
                fulfilled = conn.execute(
                    "SELECT 1 FROM pending_orders"
                    " WHERE account_id = ? AND product_key = ? AND fulfilled_by IS NOT NULL",
                    (account_id, key),
                ).fetchone()
                return Decision("already_fulfilled" if fulfilled else "no_pending_order")
            now = _now_ms()
            activation_id = f"act-{match['id']:06d}"
            # YOUR SHOP: credit the product here, with `conn`, in this same
            # transaction (e.g. UPDATE balances ...), so it commits with the
            # activation or not at all.
            conn.execute(
                "UPDATE pending_orders SET fulfilled_by = ?, fulfilled_at = ? WHERE id = ?",
                (order_ref, now, match["id"]),
            )
            conn.execute(
                "INSERT INTO activations (order_ref, activation_id, pending_id, account_id, product, amount_minor,"
                " currency, activated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (order_ref, activation_id, match["id"], account_id, product, price.amount_minor, price.currency, now),
            )
            return Decision("activated", activation_id)

    def deactivate(self, order_ref: str, activation_id: str, reason: str) -> str:
        """deactivated, already_deactivated or not_activated (no activation
        with this key and this activation id)."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT deactivated_at FROM activations WHERE order_ref = ? AND activation_id = ?",
                (order_ref, activation_id),
            ).fetchone()
            if row is None:
                return "not_activated"
            if row["deactivated_at"] is not None:
                return "already_deactivated"
            # YOUR SHOP: take the product back here, in this same transaction.
            conn.execute(
                "UPDATE activations SET deactivated_at = ?, deactivation_reason = ? WHERE order_ref = ?",
                (_now_ms(), reason, order_ref),
            )
            return "deactivated"

    def dump(self) -> dict:
        """Everything, as JSON-ready data (the `dump` command)."""
        conn = self._connect()
        try:
            accounts = [r["account_id"] for r in conn.execute("SELECT account_id FROM accounts ORDER BY account_id")]
            pending = [
                {
                    "id": r["id"],
                    "account_id": r["account_id"],
                    "product": r["product"],
                    "price": (
                        {"amount_minor": r["amount_minor"], "currency": r["currency"]} if r["currency"] else None
                    ),
                    "fulfilled_by": r["fulfilled_by"],
                }
                for r in conn.execute("SELECT * FROM pending_orders ORDER BY id")
            ]
            activations = [
                {
                    "order_ref": r["order_ref"],
                    "activation_id": r["activation_id"],
                    "pending_id": r["pending_id"],
                    "account_id": r["account_id"],
                    "product": r["product"],
                    "deactivated": r["deactivated_at"] is not None,
                }
                for r in conn.execute("SELECT * FROM activations ORDER BY activated_at, order_ref")
            ]
            return {"accounts": accounts, "pending": pending, "activations": activations}
        finally:
            conn.close()


def check_account_id(account_id: str) -> None:
    if not isinstance(account_id, str) or not ACCOUNT_ID.fullmatch(account_id):
        raise ValueError(f"account ID {account_id!r} must be 1-64 ASCII letters, digits, '-' or '_'")


def _now_ms() -> int:
    return int(time.time() * 1000)
