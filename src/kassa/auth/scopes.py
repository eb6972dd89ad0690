"""The scopes an API key can carry, and what each allows."""

SCOPES: dict[str, str] = {
    "wallets:read": "read wallets and their transactions",
    "wallets:write": "create, deposit to, withdraw from, freeze, unfreeze and close wallets",
    "withdrawals:write": "immediate withdrawals only (a narrower grant than wallets:write)",
    "events:read": "read events (every state change, as webhooks send them)",
    "customer-wallets.read_write": "the Salla dialect's customer wallet withdraw and deposit"
    " (Salla's own scope name)",
    "payouts:read": "read payouts, payment options and customers' payment instruments",
    "payouts:write": "create and move payouts, add and verify payment instruments, set payment"
    " options",
    "payouts:settle": "post a manual payout's outcome (COMPLETED or FAILED)",
    "webhooks:manage": "create, list, delete webhook endpoints, roll their secrets, see and"
    " redo deliveries",
    "customers:tokens": "issue and revoke customer tokens (each scoped to one customer)",
    "checkouts:read": "read checkout sessions (the hosted withdrawal page)",
    "checkouts:write": "create and expire checkout sessions",
}

# What a customer token may carry: reading its customer's wallets, payouts and instruments,
# and making and moving its own payouts. Routes admit customer tokens one by one
# (``kassa.auth.deps``); every other route answers them 403.
CUSTOMER_SCOPES: frozenset[str] = frozenset({"wallets:read", "payouts:read", "payouts:write"})

ALL_SCOPES = frozenset(SCOPES)

# A scope that grants another too: wallets:write covers every wallet change.
IMPLIED: dict[str, frozenset[str]] = {
    "wallets:write": frozenset({"withdrawals:write"}),
    "payouts:write": frozenset({"payouts:read"}),
    "checkouts:write": frozenset({"checkouts:read"}),
}


def expand(scopes: frozenset[str]) -> frozenset[str]:
    granted = set(scopes)
    for scope in scopes:
        granted |= IMPLIED.get(scope, frozenset())
    return frozenset(granted)
