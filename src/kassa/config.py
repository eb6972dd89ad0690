"""Settings, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kassa.kit.db import DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    pool_size: int = 4
    auth_cache_seconds: float = 5.0
    log_level: str = "info"
    log_format: str = "console"
    idempotency_ttl_hours: float = 24.0

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
        )
