    CREATE FUNCTION kassa_check_balanced(p_seq bigint) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
      v_currency text;
      v_sum numeric;
      v_count bigint;
    BEGIN
      SELECT e.currency, sum(e.amount) INTO v_currency, v_sum
        FROM journal_entries e WHERE e.transaction_seq = p_seq
        GROUP BY e.currency HAVING sum(e.amount) <> 0 LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'journal transaction % is unbalanced: % entries sum to %',
          p_seq, v_currency, v_sum USING ERRCODE = 'KSJ02';
      END IF;
      SELECT count(*) INTO v_count FROM journal_entries e WHERE e.transaction_seq = p_seq;
      IF v_count < 2 THEN
        RAISE EXCEPTION 'journal transaction % has % entries; at least two are needed',
          p_seq, v_count USING ERRCODE = 'KSJ02';
      END IF;
    END $$
    
