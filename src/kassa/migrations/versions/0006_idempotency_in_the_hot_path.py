"""Idempotency keys inside the hot path's batch statement.

A deposit or withdrawal sent with an ``Idempotency-Key`` stays in the group commit: the batch
function takes each item's key, request fingerprint, expiry and its possible error answers, and
inside the same statement it takes the key's advisory lock (held: ``idempotency_key_in_use``),
replays a stored answer, refuses a key used for another request, or does the work and stores
its answer (the transaction's JSON, which it also returns so that the first answer and every
replay are the same bytes). ``kassa_store_answer`` writes one stored answer.

Revision ID: 0006
Revises: 0005
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORE_ANSWER = """
CREATE FUNCTION kassa_store_answer(
  p_tenant uuid, p_key text, p_fingerprint text, p_status integer, p_media text, p_body text,
  p_now timestamptz, p_expires timestamptz) RETURNS void LANGUAGE sql AS $$
  INSERT INTO idempotency_keys (
    tenant_id, key, fingerprint, status_code, media_type, body, created_at, expires_at)
  VALUES (p_tenant, p_key, p_fingerprint, p_status, p_media, convert_to(p_body, 'UTF8'),
          p_now, p_expires)
$$
"""

STORE_ERROR = """
      IF p_idem_key[i] IS NOT NULL THEN
        PERFORM kassa_store_answer(
          p_tenant[i], p_idem_key[i], p_idem_fingerprint[i],
          (p_idem_errors[i]::jsonb -> o_error ->> 0)::integer, 'application/problem+json',
          p_idem_errors[i]::jsonb -> o_error ->> 1, p_now[i], p_idem_expires[i]);
      END IF;
"""

KEY_CHECK = """    o_error := NULL;
    o_status := NULL;
    o_body := NULL;
    o_media := NULL;
    o_replayed := false;
    IF p_idem_key[i] IS NOT NULL THEN
      IF NOT pg_try_advisory_xact_lock(hashtextextended(
          'idempotency:' || p_tenant[i]::text || ':' || p_idem_key[i], 0)) THEN
        o_error := 'idempotency_key_in_use';
        RETURN NEXT;
        CONTINUE;
      END IF;
      SELECT k.fingerprint, k.status_code, k.media_type, convert_from(k.body, 'UTF8'),
             k.expires_at
        INTO v_fingerprint, o_status, o_media, o_body, v_expires
        FROM idempotency_keys k WHERE k.tenant_id = p_tenant[i] AND k.key = p_idem_key[i];
      IF FOUND AND v_expires > p_now[i] THEN
        IF v_fingerprint <> p_idem_fingerprint[i] THEN
          o_error := 'idempotency_key_reused';
          o_status := NULL;
          o_media := NULL;
          o_body := NULL;
        ELSE
          o_replayed := true;
        END IF;
        RETURN NEXT;
        CONTINUE;
      ELSIF FOUND THEN
        DELETE FROM idempotency_keys k
         WHERE k.tenant_id = p_tenant[i] AND k.key = p_idem_key[i];
      END IF;
      o_status := NULL;
      o_media := NULL;
      o_body := NULL;
    END IF;
"""


def _revision_0004() -> str:
    module = importlib.import_module("kassa.migrations.versions.0004_events_outbox")
    text: str = module._with_events(module._revision_0003())
    return text


def _with_keys(function: str) -> str:
    """0004's function, taking idempotency keys."""
    changes = {
        "RETURNS TABLE (o_error text, o_currency text, o_balance_after bigint)": (
            "RETURNS TABLE (o_error text, o_currency text, o_balance_after bigint,\n"
            "  o_status integer, o_media text, o_body text, o_replayed boolean)"
        ),
        "  p_event_data text[])\n": (
            "  p_event_data text[], p_idem_key text[], p_idem_fingerprint text[],\n"
            "  p_idem_expires timestamptz[], p_idem_errors text[])\n"
        ),
        "  v_seq bigint;\n": (
            "  v_seq bigint;\n  v_fingerprint text;\n  v_expires timestamptz;\n  v_data jsonb;\n"
        ),
        "    o_error := NULL;\n": KEY_CHECK,
        "      o_error := 'duplicate_reference';\n      RETURN NEXT;\n": (
            "      o_error := 'duplicate_reference';\n"
            + STORE_ERROR.lstrip("\n")
            + "      RETURN NEXT;\n"
        ),
        "      RETURN NEXT;\n      CONTINUE;\n    END IF;\n    SELECT a.id INTO v_counter": (
            STORE_ERROR.lstrip("\n")
            + "      RETURN NEXT;\n      CONTINUE;\n    END IF;\n    SELECT a.id INTO v_counter"
        ),
        "    INSERT INTO events (id, tenant_id, type, data, created_at)\n"
        "    VALUES (p_event_id[i], p_tenant[i], p_event_type[i],\n"
        "            p_event_data[i]::jsonb || jsonb_build_object(\n"
        "              'currency', v_currency,\n"
        "              'balance_before', v_balance - p_sign[i] * p_amount[i],\n"
        "              'balance_after', v_balance),\n"
        "            p_now[i]);\n": (
            "    v_data := p_event_data[i]::jsonb || jsonb_build_object(\n"
            "      'currency', v_currency,\n"
            "      'balance_before', v_balance - p_sign[i] * p_amount[i],\n"
            "      'balance_after', v_balance);\n"
            "    INSERT INTO events (id, tenant_id, type, data, created_at)\n"
            "    VALUES (p_event_id[i], p_tenant[i], p_event_type[i], v_data, p_now[i]);\n"
        ),
        "    o_currency := v_currency;\n": (
            "    IF p_idem_key[i] IS NOT NULL THEN\n"
            "      o_status := 201;\n"
            "      o_media := 'application/json';\n"
            "      o_body := v_data::text;\n"
            "      PERFORM kassa_store_answer(\n"
            "        p_tenant[i], p_idem_key[i], p_idem_fingerprint[i], o_status, o_media,\n"
            "        o_body, p_now[i], p_idem_expires[i]);\n"
            "    END IF;\n"
            "    o_currency := v_currency;\n"
        ),
    }
    for old, new in changes.items():
        assert function.count(old) == 1, old
        function = function.replace(old, new)
    return function


SIGNATURE_0004 = (
    "kassa_post_wallets(uuid[], uuid[], text[], integer[], bigint[], text[], text[], uuid[], "
    "text[], text[], text[], text[], timestamptz[], boolean[], uuid[], text[], text[])"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(STORE_ANSWER)
    op.execute(f"DROP FUNCTION {SIGNATURE_0004}")
    op.execute(_with_keys(_revision_0004()))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute(_revision_0004())
    op.execute("DROP FUNCTION kassa_store_answer")
