-- kassa_post_wallets as migration 0016 made it (and as 0025's downgrade restores it); the
-- function's one source is kassa_post_wallets.sql.
CREATE OR REPLACE FUNCTION public.kassa_post_wallets(p_tenant uuid[], p_wallet uuid[], p_account_kind text[], p_sign integer[], p_amount bigint[], p_currency text[], p_counter_kind text[], p_transaction_id uuid[], p_transaction_kind text[], p_reference text[], p_description text[], p_metadata text[], p_now timestamp with time zone[], p_refuse_frozen boolean[], p_event_id uuid[], p_event_type text[], p_event_data text[], p_idem_key text[], p_idem_fingerprint text[])
 RETURNS TABLE(o_error text, o_currency text, o_balance_after bigint, o_cash bigint, o_held bigint, o_gift bigint, o_wallet_status text, o_frozen_until timestamp with time zone, o_freeze_reason text, o_updated_at timestamp with time zone, o_status integer, o_media text, o_body bytea, o_replayed boolean, o_existing_object text, o_existing_id uuid)
 LANGUAGE plpgsql
AS $function$
DECLARE
  v_account bigint;
  v_balance bigint;
  v_status text;
  v_frozen_until timestamptz;
  v_currency text;
  v_counter bigint;
  v_seq bigint;
  v_fingerprint text;
  v_expires timestamptz;
  v_keys text[] := '{}';
  v_reason text;
  v_updated_at timestamptz;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_wallet, 1), 0) LOOP
    o_error := NULL;
    o_currency := NULL;
    o_balance_after := NULL;
    o_cash := NULL;
    o_held := NULL;
    o_gift := NULL;
    o_wallet_status := NULL;
    o_frozen_until := NULL;
    o_freeze_reason := NULL;
    o_updated_at := NULL;
    o_status := NULL;
    o_media := NULL;
    o_body := NULL;
    o_replayed := false;
    o_existing_object := NULL;
    o_existing_id := NULL;
    IF p_idem_key[i] IS NOT NULL THEN
      -- A key met twice in one batch is two requests in flight at once, like a held lock
      -- (which this transaction would otherwise take again without waiting).
      IF p_tenant[i]::text || ':' || p_idem_key[i] = ANY (v_keys)
         OR NOT pg_try_advisory_xact_lock(hashtextextended(
           'idempotency:' || p_tenant[i]::text || ':' || p_idem_key[i], 0)) THEN
        o_error := 'idempotency_key_in_use';
        RETURN NEXT;
        CONTINUE;
      END IF;
      v_keys := v_keys || (p_tenant[i]::text || ':' || p_idem_key[i]);
      SELECT k.fingerprint, k.status_code, k.media_type, k.body, k.expires_at
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
    v_account := NULL;
    IF p_reference[i] IS NOT NULL THEN
      -- A reference is unique per tenant across transactions and payouts (the same rule and
      -- the same lock as kassa.references.service.claim).
      PERFORM pg_advisory_xact_lock(hashtextextended(
          'reference:' || p_tenant[i]::text || ':' || p_reference[i], 0));
      -- The refusal names what holds the reference (kassa.references.service.holder).
      SELECT h.object, h.id INTO o_existing_object, o_existing_id FROM (
          SELECT 'transaction' AS object, t.id FROM journal_transactions t
           WHERE t.tenant_id = p_tenant[i] AND t.reference = p_reference[i]
          UNION ALL
          SELECT 'payout', p.id FROM payouts p
           WHERE p.tenant_id = p_tenant[i] AND p.reference = p_reference[i]) h
       LIMIT 1;
      IF FOUND THEN
        o_error := 'duplicate_reference';
        RETURN NEXT;
        CONTINUE;
      END IF;
    END IF;
    IF p_sign[i] < 0 THEN
      UPDATE accounts a SET balance = a.balance - p_amount[i]
       WHERE a.wallet_id = p_wallet[i] AND a.kind = p_account_kind[i]
         AND a.tenant_id = p_tenant[i] AND a.balance - a.held >= p_amount[i]
      RETURNING a.id, a.balance INTO v_account, v_balance;
    ELSE
      UPDATE accounts a SET balance = a.balance + p_amount[i]
       WHERE a.wallet_id = p_wallet[i] AND a.kind = p_account_kind[i]
         AND a.tenant_id = p_tenant[i]
      RETURNING a.id, a.balance INTO v_account, v_balance;
    END IF;
    SELECT w.status, w.frozen_until, w.currency, w.freeze_reason, w.updated_at
      INTO v_status, v_frozen_until, v_currency, v_reason, v_updated_at
      FROM wallets w WHERE w.id = p_wallet[i] AND w.tenant_id = p_tenant[i];
    IF NOT FOUND THEN
      o_error := 'not_found';
    ELSIF v_status = 'closed' THEN
      o_error := 'wallet_closed';
    ELSIF p_refuse_frozen[i] AND v_status = 'frozen'
          AND (v_frozen_until IS NULL OR v_frozen_until > p_now[i]) THEN
      o_error := 'wallet_frozen';
    ELSIF p_currency[i] IS NOT NULL AND p_currency[i] <> v_currency THEN
      o_error := 'currency_mismatch';
    ELSIF v_account IS NULL THEN
      o_error := 'insufficient_funds';
    END IF;
    IF o_error IS NOT NULL THEN
      IF v_account IS NOT NULL THEN
        UPDATE accounts a SET balance = a.balance - p_sign[i] * p_amount[i]
         WHERE a.id = v_account;
      END IF;
      RETURN NEXT;
      CONTINUE;
    END IF;
    SELECT a.id INTO v_counter FROM accounts a
     WHERE a.tenant_id = p_tenant[i] AND a.currency = v_currency
       AND a.kind = p_counter_kind[i] AND a.wallet_id IS NULL;
    INSERT INTO journal_transactions AS t (
      id, tenant_id, wallet_id, kind, amount, currency, balance_before, balance_after,
      status, reference, description, metadata, created_at)
    VALUES (
      p_transaction_id[i], p_tenant[i], p_wallet[i], p_transaction_kind[i], p_amount[i],
      v_currency, v_balance - p_sign[i] * p_amount[i], v_balance, 'completed',
      p_reference[i], p_description[i], p_metadata[i]::jsonb, p_now[i])
    RETURNING t.seq INTO v_seq;
    INSERT INTO journal_entries (transaction_seq, account_id, currency, amount)
    VALUES (v_seq, v_account, v_currency, p_sign[i] * p_amount[i]),
           (v_seq, v_counter, v_currency, -p_sign[i] * p_amount[i]);
    INSERT INTO events (id, tenant_id, type, data, created_at)
    VALUES (p_event_id[i], p_tenant[i], p_event_type[i],
            p_event_data[i]::jsonb || jsonb_build_object(
              'currency', v_currency,
              'balance_before', v_balance - p_sign[i] * p_amount[i],
              'balance_after', v_balance),
            p_now[i]);
    -- The wallet as it is now, for answers that show it.
    SELECT sum(a.balance) FILTER (WHERE a.kind = 'cash'), sum(a.held) FILTER (WHERE a.kind = 'cash'),
           sum(a.balance) FILTER (WHERE a.kind = 'gift')
      INTO o_cash, o_held, o_gift
      FROM accounts a WHERE a.wallet_id = p_wallet[i] AND a.tenant_id = p_tenant[i];
    o_wallet_status := v_status;
    o_frozen_until := v_frozen_until;
    o_freeze_reason := v_reason;
    o_updated_at := v_updated_at;
    o_currency := v_currency;
    o_balance_after := v_balance;
    RETURN NEXT;
  END LOOP;
END $function$
