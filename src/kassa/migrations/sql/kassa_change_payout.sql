-- kassa_change_payout: a payout's status change on PostgreSQL, in one statement: posted through
-- the API, or (p_rail) the outcome its rail reported, which only a PROCESSING payout takes and
-- which keeps the rail's reference (p_connector_reference, unless NULL), or (p_expiring) the
-- payout worker's expiry of a payout it found past its deadline in that status (PREVIEW past
-- expires_at, PENDING past pending_expires_at: kassa.payouts.repository.due_expiries), which
-- only a payout still in that status takes: CANCELLED with p_reason EXPIRED, its hold (if any)
-- expired as kassa.ledger.service.expire_hold expires it. With p_clear_failures the worker's
-- past failures at the payout are cleared in the same statement (also when it was no longer
-- in the status the worker found; a refusal the caller raises rolls that back too). A move to
-- PROCESSING keeps the receipt of the payout's rail in p_receipts ({connector: {reference,
-- check_at}}) if it has one there.
-- The rules of kassa.payouts.lifecycle (check_move, check_pending) as the SQLite engine
-- (kassa.payouts.engine_sqlite.change_status) applies them, in the same order: a key in use
-- or used for another request, a payout not found, a manual outcome without the scope, an expired preview, a move that is not one of next_status; for
-- PENDING the preview's expiry, the wallet (locked), its status and currency, the instrument,
-- the payment option, then the hold of amount + fee; CANCELLED and FAILED release the hold,
-- COMPLETED captures it in one journal transaction (amount to payouts_clearing, fee to fees).
--
-- A change returns the payout as it is after, and writes its event (p_event_id) and, with an
-- Idempotency-Key, its stored answer (expiring at p_answer_expires): the payout as
-- kassa_payout_json renders it, returned too (o_body), so that a change through the API is
-- this one statement, one round trip. A refusal writes nothing and is returned as its code
-- (o_error) with what its message needs (o_info) and the payout as it is; the caller
-- (kassa.payouts.engine_pg) renders a refusal and, with a key, stores it in a transaction
-- around a second call. With a key, the key's advisory lock is taken and a stored answer
-- replayed (o_replay_*) or a key used for another request refused.
--
-- This file is the function's one source: the newest migration that changes the function loads
-- it, and tests/payouts/test_sql_source.py checks that the live function's body is this text.
-- To change the function, copy this file to sql/<revision>_kassa_change_payout.sql for the
-- migration that loads it now, point that migration at the copy, and add a migration that
-- loads this file again.
CREATE OR REPLACE FUNCTION public.kassa_change_payout(p_tenant uuid, p_payout uuid, p_target text, p_reason text, p_history_entry jsonb, p_now timestamp with time zone, p_may_settle boolean, p_idem_key text, p_idem_fingerprint text, p_hold_id uuid, p_transaction_id uuid, p_recover_after interval, p_rail boolean, p_connector_reference text, p_expiring text, p_clear_failures boolean, p_receipts jsonb, p_event_id uuid, p_answer_expires timestamp with time zone)
 RETURNS TABLE(o_error text, o_info text, o_replay_status integer, o_replay_media text, o_replay_body bytea, o_found boolean, o_body text, id uuid, tenant_id uuid, wallet_id uuid, customer_id text, instrument_id uuid, payment_option text, connector text, amount bigint, currency text, fees jsonb, fee_total bigint, status text, status_reason text, reference text, description text, metadata jsonb, hold_id uuid, transaction_id uuid, connector_reference text, next_check_at timestamp with time zone, expires_at timestamp with time zone, pending_expires_at timestamp with time zone, history jsonb, created_at timestamp with time zone, updated_at timestamp with time zone, worker_failures integer, worker_error text, worker_failing_since timestamp with time zone, worker_retry_at timestamp with time zone)
 LANGUAGE plpgsql
AS $function$
DECLARE
  v_payout payouts%ROWTYPE;
  v_allowed text[];
  v_fingerprint text;
  v_expires timestamptz;
  v_wallet record;
  v_instrument record;
  v_options jsonb;
  v_ttl bigint;
  v_option jsonb;
  v_total bigint;
  v_account bigint;
  v_hold record;
  v_balance bigint;
  v_seq bigint;
  v_clearing bigint;
  v_fees bigint;
  v_hold_id uuid;
  v_pending_expires timestamptz;
  v_next_check timestamptz;
  v_transaction uuid;
  v_receipt jsonb;
  v_reference text;
BEGIN
  o_found := false;
  IF p_idem_key IS NOT NULL THEN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(
        'idempotency:' || p_tenant::text || ':' || p_idem_key, 0)) THEN
      o_error := 'idempotency_key_in_use';
      RETURN NEXT;
      RETURN;
    END IF;
    SELECT k.fingerprint, k.status_code, k.media_type, k.body, k.expires_at
      INTO v_fingerprint, o_replay_status, o_replay_media, o_replay_body, v_expires
      FROM idempotency_keys k WHERE k.tenant_id = p_tenant AND k.key = p_idem_key;
    IF FOUND AND v_expires > p_now THEN
      IF v_fingerprint <> p_idem_fingerprint THEN
        o_error := 'idempotency_key_reused';
        o_replay_status := NULL;
        o_replay_media := NULL;
        o_replay_body := NULL;
      END IF;
      RETURN NEXT;
      RETURN;
    ELSIF FOUND THEN
      DELETE FROM idempotency_keys k WHERE k.tenant_id = p_tenant AND k.key = p_idem_key;
    END IF;
    o_replay_status := NULL;
    o_replay_media := NULL;
    o_replay_body := NULL;
  END IF;

  SELECT * INTO v_payout FROM payouts p WHERE p.tenant_id = p_tenant AND p.id = p_payout
     FOR UPDATE;
  IF NOT FOUND THEN
    o_error := 'not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  v_allowed := CASE
    -- The rail's outcome (kassa.payouts.lifecycle.apply_outcome): only a PROCESSING payout
    -- changes, whatever its rail.
    WHEN p_rail THEN CASE WHEN v_payout.status = 'PROCESSING'
      THEN ARRAY['COMPLETED', 'FAILED'] ELSE ARRAY[]::text[] END
    -- The worker's expiry (kassa.payouts.engine_sqlite._expire): only a payout still in the
    -- status the worker found it in; of two workers racing, one cancels it.
    WHEN p_expiring IS NOT NULL THEN CASE WHEN v_payout.status = p_expiring
         AND p_expiring IN ('PREVIEW', 'PENDING')
      THEN ARRAY['CANCELLED'] ELSE ARRAY[]::text[] END
    WHEN v_payout.status = 'PREVIEW' THEN ARRAY['PENDING', 'CANCELLED']
    WHEN v_payout.status = 'PENDING' THEN ARRAY['PROCESSING', 'CANCELLED']
    WHEN v_payout.status = 'PROCESSING' AND v_payout.connector = 'manual'
      THEN ARRAY['COMPLETED', 'FAILED']
    ELSE ARRAY[]::text[] END;

  o_error := CASE
    WHEN p_target IN ('COMPLETED', 'FAILED') AND NOT p_may_settle AND p_target = ANY (v_allowed)
      THEN 'forbidden'
    -- The worker cancelled the expired preview already: the same answer as before it did.
    WHEN p_target = 'PENDING' AND v_payout.status = 'CANCELLED'
         AND v_payout.status_reason = 'EXPIRED' AND v_payout.hold_id IS NULL
         AND v_payout.expires_at <= p_now THEN 'payout_expired'
    WHEN NOT p_target = ANY (v_allowed) THEN 'invalid_status_transition'
    WHEN p_target = 'PENDING' AND v_payout.expires_at <= p_now THEN 'payout_expired'
  END;

  v_hold_id := v_payout.hold_id;
  v_pending_expires := v_payout.pending_expires_at;
  v_next_check := v_payout.next_check_at;
  v_transaction := v_payout.transaction_id;

  <<change>>
  BEGIN
    IF o_error IS NULL AND p_target = 'PENDING' THEN
      PERFORM 1 FROM accounts a WHERE a.tenant_id = p_tenant AND a.wallet_id = v_payout.wallet_id
        ORDER BY a.id FOR UPDATE;
      SELECT w.status, w.frozen_until, w.currency INTO v_wallet
        FROM wallets w WHERE w.tenant_id = p_tenant AND w.id = v_payout.wallet_id;
      SELECT i.status, i.type INTO v_instrument FROM payment_instruments i
       WHERE i.tenant_id = p_tenant AND i.id = v_payout.instrument_id AND i.deleted_at IS NULL;
      SELECT o.options, o.pending_ttl_seconds INTO v_options, v_ttl
        FROM payment_options o WHERE o.tenant_id = p_tenant;
      SELECT e.value INTO v_option FROM jsonb_array_elements(coalesce(v_options, '[]')) AS e(value)
       WHERE e.value ->> 'code' = v_payout.payment_option;
      o_error := CASE
        WHEN v_wallet.status IS NULL THEN 'wallet_not_found'
        WHEN v_wallet.status = 'closed' THEN 'wallet_closed'
        WHEN v_wallet.status = 'frozen'
             AND (v_wallet.frozen_until IS NULL OR v_wallet.frozen_until > p_now)
          THEN 'wallet_frozen'
        WHEN v_wallet.currency <> v_payout.currency THEN 'currency_mismatch'
        WHEN v_instrument.status IS NULL THEN 'instrument_deleted'
        WHEN v_instrument.status <> 'verified' THEN 'instrument_not_verified'
        WHEN v_option IS NULL THEN 'unknown_payment_option'
        WHEN NOT v_option -> 'currencies' ? v_payout.currency THEN 'option_currency'
        WHEN v_payout.amount NOT BETWEEN (v_option ->> 'min_amount')::bigint
                                     AND (v_option ->> 'max_amount')::bigint
          THEN 'option_amount'
        WHEN NOT v_option -> 'instrument_types' ? v_instrument.type THEN 'option_instrument'
      END;
      o_info := CASE o_error
        WHEN 'option_amount' THEN (v_option ->> 'min_amount') || ' ' || (v_option ->> 'max_amount')
        WHEN 'option_instrument' THEN v_instrument.type
      END;
      IF o_error IS NULL THEN
        v_total := v_payout.amount + v_payout.fee_total;
        UPDATE accounts a SET held = a.held + v_total
         WHERE a.tenant_id = p_tenant AND a.wallet_id = v_payout.wallet_id AND a.kind = 'cash'
           AND a.balance - a.held >= v_total
        RETURNING a.id INTO v_account;
        IF v_account IS NULL THEN
          o_error := 'insufficient_funds';
        ELSE
          v_hold_id := p_hold_id;
          INSERT INTO holds (id, tenant_id, account_id, wallet_id, amount, currency, status,
                             reference, expires_at, created_at)
          VALUES (p_hold_id, p_tenant, v_account, v_payout.wallet_id, v_total, v_payout.currency,
                  'open', 'payout:' || v_payout.id::text, NULL, p_now);
          v_pending_expires := p_now + make_interval(secs => v_ttl);
        END IF;
      END IF;
    END IF;

    IF o_error IS NOT NULL THEN
      EXIT change;
    END IF;

    IF p_target IN ('CANCELLED', 'FAILED') AND v_payout.hold_id IS NOT NULL THEN
      -- An expired payout's hold is expired (kassa.ledger.service.expire_hold), not released.
      UPDATE holds h
         SET status = CASE WHEN p_expiring IS NULL THEN 'released' ELSE 'expired' END,
             resolved_at = p_now
       WHERE h.id = v_payout.hold_id AND h.tenant_id = p_tenant AND h.status = 'open'
      RETURNING h.account_id, h.amount INTO v_hold;
      IF NOT FOUND THEN  -- nothing written yet: refused as kassa.ledger.service refuses it
        o_error := CASE WHEN EXISTS (SELECT 1 FROM holds h
          WHERE h.id = v_payout.hold_id AND h.tenant_id = p_tenant)
          THEN 'hold_not_open' ELSE 'hold_not_found' END;
        EXIT change;
      END IF;
      UPDATE accounts a SET held = a.held - v_hold.amount WHERE a.id = v_hold.account_id;
    ELSIF p_target = 'FAILED' THEN
      RAISE EXCEPTION 'payout % is % without a hold', v_payout.id, v_payout.status;
    ELSIF p_target = 'PROCESSING' THEN
      -- A rail whose receipt needs no call (kassa.payouts.rails.receipts_ahead: the manual
      -- rail) has it kept with the move. Any other is called after this commits; if its answer
      -- is never recorded, the worker looks the payout up after p_recover_after.
      v_receipt := p_receipts -> v_payout.connector;
      IF v_receipt IS NULL THEN
        v_next_check := p_now + p_recover_after;
      ELSE
        v_reference := v_receipt ->> 'reference';
        v_next_check := (v_receipt ->> 'check_at')::timestamptz;
      END IF;
    ELSIF p_target = 'COMPLETED' THEN
      IF v_payout.hold_id IS NULL THEN
        RAISE EXCEPTION 'payout % is % without a hold', v_payout.id, v_payout.status;
      END IF;
      UPDATE holds h SET status = 'captured', resolved_at = p_now
       WHERE h.id = v_payout.hold_id AND h.tenant_id = p_tenant AND h.status = 'open'
      RETURNING h.account_id, h.amount, h.currency, h.wallet_id INTO v_hold;
      IF NOT FOUND THEN  -- nothing written yet: refused as kassa.ledger.service refuses it
        o_error := CASE WHEN EXISTS (SELECT 1 FROM holds h
          WHERE h.id = v_payout.hold_id AND h.tenant_id = p_tenant)
          THEN 'hold_not_open' ELSE 'hold_not_found' END;
        EXIT change;
      END IF;
      IF v_hold.amount <> v_payout.amount + v_payout.fee_total THEN
        RAISE EXCEPTION 'hold % of payout % is not its total', v_payout.hold_id, v_payout.id;
      END IF;
      UPDATE accounts a SET balance = a.balance - v_hold.amount, held = a.held - v_hold.amount
       WHERE a.id = v_hold.account_id RETURNING a.balance INTO v_balance;
      SELECT a.id INTO v_clearing FROM accounts a
       WHERE a.tenant_id = p_tenant AND a.currency = v_hold.currency
         AND a.kind = 'payouts_clearing' AND a.wallet_id IS NULL;
      SELECT a.id INTO v_fees FROM accounts a
       WHERE a.tenant_id = p_tenant AND a.currency = v_hold.currency
         AND a.kind = 'fees' AND a.wallet_id IS NULL;
      -- Identified by its hold and payout, never by a reference: a capture cannot be refused
      -- for one (the payout's own reference was claimed when it was created).
      INSERT INTO journal_transactions AS t (
        id, tenant_id, wallet_id, kind, amount, currency, balance_before, balance_after,
        status, reference, description, metadata, hold_id, created_at)
      VALUES (
        p_transaction_id, p_tenant, v_hold.wallet_id, 'withdrawal', v_hold.amount,
        v_hold.currency, v_balance + v_hold.amount, v_balance, 'completed', NULL,
        coalesce(v_payout.description, 'payout ' || v_payout.id::text),
        jsonb_strip_nulls(jsonb_build_object(
          'payout_id', v_payout.id::text, 'payout_reference', v_payout.reference)),
        v_payout.hold_id, p_now)
      RETURNING t.seq INTO v_seq;
      INSERT INTO journal_entries (transaction_seq, account_id, currency, amount)
      SELECT v_seq, e.account, v_hold.currency, e.amount
        FROM (VALUES (1, v_hold.account_id, -v_hold.amount),
                     (2, v_clearing, v_payout.amount),
                     (3, v_fees, v_payout.fee_total)) AS e(n, account, amount)
       WHERE e.amount <> 0 ORDER BY e.n;
      v_transaction := p_transaction_id;
    END IF;
    IF p_target IN ('COMPLETED', 'FAILED') THEN
      v_next_check := NULL;
    END IF;

    UPDATE payouts p SET status = p_target, status_reason = p_reason,
           history = p.history || jsonb_build_array(p_history_entry), updated_at = p_now,
           hold_id = v_hold_id, pending_expires_at = v_pending_expires,
           next_check_at = v_next_check, transaction_id = v_transaction,
         connector_reference = coalesce(p_connector_reference, v_reference,
                                        p.connector_reference)
     WHERE p.id = v_payout.id
    RETURNING p.* INTO v_payout;
  END;

  -- The worker succeeded at the payout (kassa.payouts.failures.clear).
  IF p_clear_failures AND v_payout.worker_failures > 0 THEN
    UPDATE payouts p SET worker_failures = 0, worker_error = NULL, worker_failing_since = NULL,
           worker_retry_at = NULL
     WHERE p.id = v_payout.id
    RETURNING p.* INTO v_payout;
  END IF;

  -- The payout as it is now: after the change, or as it was if it was refused.
  -- What the change answers (kassa_payout_json), its event and, with a key, its stored answer.
  IF o_error IS NULL THEN
    o_body := kassa_payout_json(v_payout);
    INSERT INTO events (id, tenant_id, type, data, created_at)
    VALUES (p_event_id, p_tenant, 'payout.' || lower(p_target), o_body::jsonb, p_now);
    IF p_idem_key IS NOT NULL THEN
      INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status_code, media_type, body,
                                    created_at, expires_at)
      VALUES (p_tenant, p_idem_key, p_idem_fingerprint, 200, 'application/json',
              convert_to(o_body, 'UTF8'), p_now, p_answer_expires);
    END IF;
  END IF;
  o_found := true;
  id := v_payout.id;
  tenant_id := v_payout.tenant_id;
  wallet_id := v_payout.wallet_id;
  customer_id := v_payout.customer_id;
  instrument_id := v_payout.instrument_id;
  payment_option := v_payout.payment_option;
  connector := v_payout.connector;
  amount := v_payout.amount;
  currency := v_payout.currency;
  fees := v_payout.fees;
  fee_total := v_payout.fee_total;
  status := v_payout.status;
  status_reason := v_payout.status_reason;
  reference := v_payout.reference;
  description := v_payout.description;
  metadata := v_payout.metadata;
  hold_id := v_payout.hold_id;
  transaction_id := v_payout.transaction_id;
  connector_reference := v_payout.connector_reference;
  next_check_at := v_payout.next_check_at;
  expires_at := v_payout.expires_at;
  pending_expires_at := v_payout.pending_expires_at;
  history := v_payout.history;
  created_at := v_payout.created_at;
  updated_at := v_payout.updated_at;
  worker_failures := v_payout.worker_failures;
  worker_error := v_payout.worker_error;
  worker_failing_since := v_payout.worker_failing_since;
  worker_retry_at := v_payout.worker_retry_at;
  RETURN NEXT;
END $function$
