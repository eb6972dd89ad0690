-- kassa_create_payout: a payout's PREVIEW through the API on PostgreSQL, in one statement.
-- The rules of kassa.payouts.lifecycle.create, in the same order: a key in use or used for
-- another request, the wallet (closed, or frozen: a payout that could not go now is not
-- previewed either), the currency asked for, the customer's instrument, the payment
-- option and its limits, the fee (options.fee_for: fixed + amount * bps / 10,000 half up, at
-- least min, at most max; amount + fee within 10^15), the reference (unique per tenant across
-- transactions and payouts, under the same advisory lock as kassa.references.service.claim,
-- its refusal naming what holds it);
-- then the payout in PREVIEW. No money moves.
--
-- A PREVIEW returns the payout and writes its event (p_event_id) and, with an Idempotency-Key,
-- its stored answer (expiring at p_answer_expires): the payout as kassa_payout_json renders
-- it, returned too (o_body), so that a creation is this one statement, one round trip. A
-- refusal writes nothing and is returned as its code (o_error) with what its message needs
-- (o_info); the caller (kassa.payouts.engine_pg) renders a refusal and, with a key, stores it
-- in a transaction around a second call. With a key, the key's advisory lock is taken and a
-- stored answer replayed (o_replay_*) or a key used for another request refused.
--
-- This file is the function's one source: the newest migration that changes the function loads
-- it, and tests/payouts/test_sql_source.py checks that the live function's body is this text.
-- To change the function, copy this file to sql/<revision>_kassa_create_payout.sql for the
-- migration that loads it now, point that migration at the copy, and add a migration that
-- loads this file again.
CREATE OR REPLACE FUNCTION public.kassa_create_payout(p_tenant uuid, p_payout uuid, p_wallet uuid, p_amount bigint, p_currency text, p_option text, p_instrument uuid, p_reference text, p_description text, p_metadata jsonb, p_history_entry jsonb, p_expires_at timestamp with time zone, p_now timestamp with time zone, p_idem_key text, p_idem_fingerprint text, p_event_id uuid, p_answer_expires timestamp with time zone)
 RETURNS TABLE(o_error text, o_info text, o_replay_status integer, o_replay_media text, o_replay_body bytea, o_found boolean, o_body text, id uuid, tenant_id uuid, wallet_id uuid, customer_id text, instrument_id uuid, payment_option text, connector text, amount bigint, currency text, fees jsonb, fee_total bigint, status text, status_reason text, reference text, description text, metadata jsonb, hold_id uuid, transaction_id uuid, connector_reference text, next_check_at timestamp with time zone, expires_at timestamp with time zone, pending_expires_at timestamp with time zone, history jsonb, created_at timestamp with time zone, updated_at timestamp with time zone, worker_failures integer, worker_error text, worker_failing_since timestamp with time zone, worker_retry_at timestamp with time zone)
 LANGUAGE plpgsql
AS $function$
DECLARE
  v_payout payouts%ROWTYPE;
  v_fingerprint text;
  v_expires timestamptz;
  v_wallet record;
  v_instrument record;
  v_options jsonb;
  v_option jsonb;
  v_fee bigint;
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

  SELECT w.currency, w.customer_id, w.status, w.frozen_until INTO v_wallet
    FROM wallets w WHERE w.tenant_id = p_tenant AND w.id = p_wallet;
  IF NOT FOUND THEN
    o_error := 'wallet_not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  IF v_wallet.status = 'closed' THEN
    o_error := 'wallet_closed';
    RETURN NEXT;
    RETURN;
  END IF;
  IF v_wallet.status = 'frozen'
     AND (v_wallet.frozen_until IS NULL OR v_wallet.frozen_until > p_now) THEN
    o_error := 'wallet_frozen';
    RETURN NEXT;
    RETURN;
  END IF;
  o_info := v_wallet.currency;
  IF p_currency IS NOT NULL AND p_currency <> v_wallet.currency THEN
    o_error := 'currency_mismatch';
    RETURN NEXT;
    RETURN;
  END IF;
  SELECT i.type, i.customer_id INTO v_instrument FROM payment_instruments i
   WHERE i.tenant_id = p_tenant AND i.id = p_instrument AND i.deleted_at IS NULL;
  SELECT o.options INTO v_options FROM payment_options o WHERE o.tenant_id = p_tenant;
  SELECT e.value INTO v_option FROM jsonb_array_elements(coalesce(v_options, '[]')) AS e(value)
   WHERE e.value ->> 'code' = p_option;
  o_error := CASE
    WHEN v_instrument.type IS NULL OR v_instrument.customer_id <> v_wallet.customer_id
      THEN 'instrument_not_found'
    WHEN v_option IS NULL THEN 'unknown_payment_option'
    WHEN NOT v_option -> 'currencies' ? v_wallet.currency THEN 'option_currency'
    WHEN p_amount NOT BETWEEN (v_option ->> 'min_amount')::bigint
                          AND (v_option ->> 'max_amount')::bigint THEN 'option_amount'
    WHEN NOT v_option -> 'instrument_types' ? v_instrument.type THEN 'option_instrument'
  END;
  IF o_error IS NOT NULL THEN
    o_info := CASE o_error
      WHEN 'option_currency' THEN v_wallet.currency
      WHEN 'option_amount' THEN (v_option ->> 'min_amount') || ' ' || (v_option ->> 'max_amount')
      WHEN 'option_instrument' THEN v_instrument.type
    END;
    RETURN NEXT;
    RETURN;
  END IF;
  -- numeric: amount * bps can pass the range of bigint.
  v_fee := coalesce((v_option -> 'fee' ->> 'fixed')::bigint, 0)
    + div(p_amount::numeric * coalesce((v_option -> 'fee' ->> 'bps')::numeric, 0) + 5000, 10000);
  v_fee := greatest(v_fee, coalesce((v_option -> 'fee' ->> 'min')::bigint, 0));
  IF jsonb_typeof(v_option -> 'fee' -> 'max') = 'number' THEN
    v_fee := least(v_fee, (v_option -> 'fee' ->> 'max')::bigint);
  END IF;
  IF p_amount + v_fee > 1000000000000000 THEN
    o_error := 'fee_too_large';
    RETURN NEXT;
    RETURN;
  END IF;
  IF p_reference IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'reference:' || p_tenant::text || ':' || p_reference, 0));
    -- The refusal names what holds the reference (kassa.references.service.holder).
    SELECT h.object || ' ' || h.id::text INTO o_info FROM (
        SELECT 'transaction' AS object, t.id FROM journal_transactions t
         WHERE t.tenant_id = p_tenant AND t.reference = p_reference
        UNION ALL
        SELECT 'payout', p.id FROM payouts p
         WHERE p.tenant_id = p_tenant AND p.reference = p_reference) h
     LIMIT 1;
    IF FOUND THEN
      o_error := 'duplicate_reference';
      RETURN NEXT;
      RETURN;
    END IF;
  END IF;

  INSERT INTO payouts AS p (id, tenant_id, wallet_id, customer_id, instrument_id, payment_option,
    connector, amount, currency, fees, fee_total, status, reference, description, metadata,
    expires_at, history, created_at, updated_at)
  VALUES (p_payout, p_tenant, p_wallet, v_wallet.customer_id, p_instrument, p_option,
    v_option ->> 'connector', p_amount, v_wallet.currency,
    CASE WHEN v_fee > 0 THEN jsonb_build_array(jsonb_build_object(
      'amount', v_fee, 'currency', v_wallet.currency, 'reason', 'WITHDRAWAL_FEE'))
    ELSE '[]'::jsonb END,
    v_fee, 'PREVIEW', p_reference, p_description, p_metadata, p_expires_at,
    jsonb_build_array(p_history_entry), p_now, p_now)
  RETURNING p.* INTO v_payout;
  -- What the change answers (kassa_payout_json), its event and, with a key, its stored answer.
  IF o_error IS NULL THEN
    o_body := kassa_payout_json(v_payout);
    INSERT INTO events (id, tenant_id, type, data, created_at)
    VALUES (p_event_id, p_tenant, 'payout.created', o_body::jsonb, p_now);
    IF p_idem_key IS NOT NULL THEN
      INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status_code, media_type, body,
                                    created_at, expires_at)
      VALUES (p_tenant, p_idem_key, p_idem_fingerprint, 201, 'application/json',
              convert_to(o_body, 'UTF8'), p_now, p_answer_expires);
    END IF;
  END IF;
  o_info := NULL;
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
