from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kassa.auth.scopes import CUSTOMER_SCOPES
from kassa.ledger.schemas import Timestamp

CustomerScope = Annotated[str, Field(json_schema_extra={"enum": sorted(CUSTOMER_SCOPES)})]


class NewCustomerToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[CustomerScope] | None = Field(
        default=None,
        max_length=len(CUSTOMER_SCOPES),
        description="what the token may do; default: every customer scope the API key holds",
    )
    expires_in: int = Field(
        default=900, ge=60, le=86_400, description="seconds until the token stops working"
    )


class CustomerTokenInfo(BaseModel):
    id: uuid.UUID
    customer_id: str
    scopes: list[str]
    created_at: Timestamp
    expires_at: Timestamp
    revoked_at: Timestamp | None = None


class IssuedCustomerTokenOut(CustomerTokenInfo):
    token: str = Field(description="shown this once; Kassa keeps only its SHA-256")


class CustomerTokenList(BaseModel):
    data: list[CustomerTokenInfo]
