"""What every request of a process shares: settings, database, clock, authenticator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from kassa.config import Settings
from kassa.kit.clock import Clock
from kassa.kit.db import Database
from kassa.kit.secretbox import SecretBox

if TYPE_CHECKING:  # what the app puts here; the domains import this module, not the reverse
    from kassa.auth.service import Authenticator
    from kassa.payouts.connectors import Connector


@dataclass
class AppState:
    settings: Settings
    db: Database
    clock: Clock
    authenticator: Authenticator
    connectors: dict[str, Connector] = field(default_factory=dict)
    _box: SecretBox | None = field(default=None, repr=False)

    @property
    def box(self) -> SecretBox:
        """The operator's key for secrets at rest, read (or, by default, made) on first use."""
        if self._box is None:
            self._box = SecretBox.from_settings(self.settings)
        return self._box


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.kassa
    return state
