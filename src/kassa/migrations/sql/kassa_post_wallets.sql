-- kassa_post_wallets: every deposit, gift, immediate withdrawal and gift forfeit on PostgreSQL.
-- One call posts a batch (the group commit of kassa.wallets.engine_pg), each item on its own: an
-- item refused (unknown, closed or frozen wallet, other currency, insufficient funds, a
-- reference used before, an Idempotency-Key in use or used for another request) writes nothing
-- of its own and is reported by its error code (a used reference also by what holds it: the
-- transaction or payout, o_existing_object and o_existing_id); the others commit together.
--
-- With an Idempotency-Key the function takes the key's advisory lock, replays a stored answer
-- (o_replayed) or refuses a key used for another request; the caller renders the answer of an
-- item that went through (or was refused) and stores it in the same transaction. An item that
-- went through also returns the wallet as it is after it (balances, status), which answers
-- that show the wallet need, so that they need no read of their own.
--
-- The wallet account's row is locked by its UPDATE and the wallet's status read after that, so
-- a close (which locks the same row first) and a concurrent deposit are serialised. A refused
-- item whose UPDATE already ran is undone by the opposite UPDATE. Callers pass items ordered by
-- wallet so that two batches lock wallets in the same order.
--
-- The loop checks and moves each item (its wallet account's UPDATE and the wallet's read); the
-- items that went through are written after it, all in one statement: their journal
-- transactions, their entries and their events (a statement's fixed cost, its executor and its
-- tables' constraints, is paid once a batch instead of three times an item). A reference taken
-- by an earlier item of the same batch is refused as the committed one would be.
--
-- This file is the function's one source: the newest migration that changes the function loads
-- it, and tests/ledger/test_sql_sources.py checks that the live function's body is this text.
-- To change the function, copy this file to sql/<revision>_kassa_post_wallets.sql for the
-- migration that loads it now, point that migration at the copy, and add a migration that
-- loads this file again.
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
  v_fingerprint text;
  v_expires timestamptz;
  v_keys text[] := '{}';
  v_reason text;
  v_updated_at timestamptz;
  v_wallet_tenant uuid;
  v_at integer;
  -- The items that went through, posted together after the loop.
  v_ok integer[] := '{}';
  v_ok_account bigint[] := '{}';
  v_ok_counter bigint[] := '{}';
  v_ok_currency text[] := '{}';
  v_ok_balance bigint[] := '{}';
  -- References taken by items of this batch, and their transactions.
  v_refs text[] := '{}';
  v_ref_ids uuid[] := '{}';
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
      v_at := array_position(v_refs, p_tenant[i]::text || ':' || p_reference[i]);
      IF v_at IS NOT NULL THEN  -- taken by an item before this one in the batch
        o_error := 'duplicate_reference';
        o_existing_object := 'transaction';
        o_existing_id := v_ref_ids[v_at];
        RETURN NEXT;
        CONTINUE;
      END IF;
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
    -- By its id alone (its unique index, whatever the statistics say: a generic plan may
    -- otherwise pick the tenant's index and read every wallet of the tenant), then its tenant.
    SELECT w.status, w.frozen_until, w.currency, w.freeze_reason, w.updated_at, w.tenant_id
      INTO v_status, v_frozen_until, v_currency, v_reason, v_updated_at, v_wallet_tenant
      FROM wallets w WHERE w.id = p_wallet[i];
    IF NOT FOUND OR v_wallet_tenant <> p_tenant[i] THEN
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
    v_ok := v_ok || i;
    v_ok_account := v_ok_account || v_account;
    v_ok_counter := v_ok_counter || v_counter;
    v_ok_currency := v_ok_currency || v_currency;
    v_ok_balance := v_ok_balance || v_balance;
    IF p_reference[i] IS NOT NULL THEN
      v_refs := v_refs || (p_tenant[i]::text || ':' || p_reference[i]);
      v_ref_ids := v_ref_ids || p_transaction_id[i];
    END IF;
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
  IF cardinality(v_ok) > 0 THEN
    WITH item AS (
      SELECT u.i, u.account, u.counter, u.currency, u.balance, u.ord
        FROM unnest(v_ok, v_ok_account, v_ok_counter, v_ok_currency, v_ok_balance)
             WITH ORDINALITY AS u (i, account, counter, currency, balance, ord)
    ), t AS (
      INSERT INTO journal_transactions (
        id, tenant_id, wallet_id, kind, amount, currency, balance_before, balance_after,
        status, reference, description, metadata, created_at)
      SELECT p_transaction_id[item.i], p_tenant[item.i], p_wallet[item.i],
             p_transaction_kind[item.i], p_amount[item.i], item.currency,
             item.balance - p_sign[item.i] * p_amount[item.i], item.balance, 'completed',
             p_reference[item.i], p_description[item.i], p_metadata[item.i]::jsonb,
             p_now[item.i]
        FROM item ORDER BY item.ord
      RETURNING seq, id
    ), e AS (
      INSERT INTO journal_entries (transaction_seq, account_id, currency, amount)
      SELECT t.seq, x.account, item.currency, x.amount
        FROM t JOIN item ON p_transaction_id[item.i] = t.id
       CROSS JOIN LATERAL (VALUES (item.account, p_sign[item.i] * p_amount[item.i], 1),
                                  (item.counter, -p_sign[item.i] * p_amount[item.i], 2))
             AS x (account, amount, leg)
       ORDER BY t.seq, x.leg
    )
    INSERT INTO events (id, tenant_id, type, data, created_at)
    SELECT p_event_id[item.i], p_tenant[item.i], p_event_type[item.i],
           p_event_data[item.i]::jsonb || jsonb_build_object(
             'currency', item.currency,
             'balance_before', item.balance - p_sign[item.i] * p_amount[item.i],
             'balance_after', item.balance),
           p_now[item.i]
      FROM item ORDER BY item.ord;
  END IF;
END $function$
