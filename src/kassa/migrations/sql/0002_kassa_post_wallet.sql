    CREATE FUNCTION kassa_post_wallet(
      p_tenant uuid, p_wallet uuid, p_account_kind text, p_sign integer, p_amount bigint,
      p_currency text, p_counter_kind text, p_transaction_id uuid, p_transaction_kind text,
      p_reference text, p_description text, p_metadata jsonb, p_now timestamptz,
      p_refuse_frozen boolean,
      OUT o_currency text, OUT o_balance_after bigint, OUT o_seq bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      v_account bigint;
      v_status text;
      v_frozen_until timestamptz;
      v_counter bigint;
    BEGIN
      IF p_sign < 0 THEN
        UPDATE accounts a SET balance = a.balance - p_amount
         WHERE a.wallet_id = p_wallet AND a.kind = p_account_kind AND a.tenant_id = p_tenant
           AND a.balance - a.held >= p_amount
        RETURNING a.id, a.balance INTO v_account, o_balance_after;
      ELSE
        UPDATE accounts a SET balance = a.balance + p_amount
         WHERE a.wallet_id = p_wallet AND a.kind = p_account_kind AND a.tenant_id = p_tenant
        RETURNING a.id, a.balance INTO v_account, o_balance_after;
      END IF;
      SELECT w.status, w.frozen_until, w.currency INTO v_status, v_frozen_until, o_currency
        FROM wallets w WHERE w.id = p_wallet AND w.tenant_id = p_tenant;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'not_found' USING ERRCODE = 'KS404';
      END IF;
      IF v_status = 'closed' THEN
        RAISE EXCEPTION 'wallet_closed' USING ERRCODE = 'KS409';
      END IF;
      IF p_refuse_frozen AND v_status = 'frozen'
         AND (v_frozen_until IS NULL OR v_frozen_until > p_now) THEN
        RAISE EXCEPTION 'wallet_frozen' USING ERRCODE = 'KS409';
      END IF;
      IF p_currency IS NOT NULL AND p_currency <> o_currency THEN
        RAISE EXCEPTION 'currency_mismatch' USING ERRCODE = 'KS422';
      END IF;
      IF v_account IS NULL THEN
        RAISE EXCEPTION 'insufficient_funds' USING ERRCODE = 'KS409';
      END IF;
      SELECT a.id INTO v_counter FROM accounts a
       WHERE a.tenant_id = p_tenant AND a.currency = o_currency AND a.kind = p_counter_kind
         AND a.wallet_id IS NULL;
      INSERT INTO journal_transactions AS t (
        id, tenant_id, wallet_id, kind, amount, currency, balance_before, balance_after,
        status, reference, description, metadata, created_at)
      VALUES (
        p_transaction_id, p_tenant, p_wallet, p_transaction_kind, p_amount, o_currency,
        o_balance_after - p_sign * p_amount, o_balance_after, 'completed', p_reference,
        p_description, p_metadata, p_now)
      RETURNING t.seq INTO o_seq;
      INSERT INTO journal_entries (transaction_seq, account_id, currency, amount)
      VALUES (o_seq, v_account, o_currency, p_sign * p_amount),
             (o_seq, v_counter, o_currency, -p_sign * p_amount);
    END $$
    
