"""Settings, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kassa.kit.dburl import DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    pool_size: int = 4
    auth_cache_seconds: float = 5.0
    log_level: str = "info"
    log_format: str = "console"
    idempotency_ttl_hours: float = 24.0
    # Fernet keys (comma-separated, the first encrypts) for secrets kept at rest; when unset,
    # the key in secret_key_file, made on first start.
    secret_key: str | None = None
    secret_key_file: str = "kassa.key"  # noqa: S105 - a file name, not a secret
    # Hosts webhooks may reach over plain http and at private addresses (e.g. a loopback receiver).
    webhook_allowed_hosts: frozenset[str] = frozenset()
    # Run the background worker (webhook delivery, payouts) inside `kassa serve`: auto = on
    # SQLite only.
    worker: str = "auto"
    webhook_timeout_seconds: float = 10.0
    # How long the sandbox payout rail takes to settle.
    sandbox_delay_seconds: float = 5.0
    # How long a payout's PREVIEW may be moved on.
    payout_preview_minutes: float = 15.0
    # The dialects (facades of other withdrawal APIs) to serve under /compat/<name>.
    dialects: frozenset[str] = frozenset({"salla", "walletapi", "autional", "paysafe", "soap"})
    # When set, /metrics answers only requests bearing this token.
    metrics_token: str | None = None
    # One log line per request (`kassa serve --access-log` sets it for its workers).
    access_log: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("KASSA_DATABASE_URL") or DEFAULT_DATABASE_URL,
            pool_size=int(env.get("KASSA_POOL_SIZE", "4")),
            auth_cache_seconds=float(env.get("KASSA_AUTH_CACHE_SECONDS", "5")),
            log_level=env.get("KASSA_LOG_LEVEL", "info"),
            log_format=env.get("KASSA_LOG_FORMAT", "console"),
            idempotency_ttl_hours=float(env.get("KASSA_IDEMPOTENCY_TTL_HOURS", "24")),
            secret_key=env.get("KASSA_SECRET_KEY") or None,
            secret_key_file=env.get("KASSA_SECRET_KEY_FILE") or "kassa.key",
            webhook_allowed_hosts=frozenset(
                host.strip().lower().strip("[]")
                for host in env.get("KASSA_WEBHOOK_ALLOWED_HOSTS", "").split(",")
                if host.strip()
            ),
            worker=env.get("KASSA_WORKER", "auto").lower(),
            webhook_timeout_seconds=float(env.get("KASSA_WEBHOOK_TIMEOUT_SECONDS", "10")),
            sandbox_delay_seconds=float(env.get("KASSA_SANDBOX_DELAY_SECONDS", "5")),
            payout_preview_minutes=float(env.get("KASSA_PAYOUT_PREVIEW_MINUTES", "15")),
            metrics_token=env.get("KASSA_METRICS_TOKEN") or None,
            access_log=env.get("KASSA_ACCESS_LOG", "").lower() in ("1", "true", "yes", "on"),
            dialects=frozenset(
                name.strip().lower()
                for name in env.get(
                    "KASSA_DIALECTS", "salla,walletapi,autional,paysafe,soap"
                ).split(",")
                if name.strip()
            ),
        )
