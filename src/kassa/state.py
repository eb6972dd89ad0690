"""What every request of a process shares: settings, database, clock, authenticator."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from kassa.auth.service import Authenticator
from kassa.config import Settings
from kassa.kit.clock import Clock
from kassa.kit.db import Database


@dataclass
class AppState:
    settings: Settings
    db: Database
    clock: Clock
    authenticator: Authenticator


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.kassa
    return state
