-- kassa_payout_json: a payout as the native API shows it, for the answer and the event that
-- kassa_create_payout and kassa_change_payout write with a change. It is the JSON text that
-- kassa.payouts.lifecycle.shown renders in Python (kassa.payouts.schemas.PayoutOut): the same
-- fields in the same order, compact, timestamps as kassa.kit.clock.isoformat writes them
-- (UTC, a Z, microseconds only when there are any), next_status as lifecycle.next_status,
-- fees, metadata and history with their keys in the order the row keeps them.
-- tests/payouts/test_payout_json.py checks that both renderings are the same bytes, for
-- payouts of every status and for metadata, references and reasons of any text.
--
-- This file is the function's one source: the newest migration that changes the function loads
-- it, and tests/payouts/test_sql_source.py checks that the live function's body is this text.
-- To change the function, copy this file to sql/<revision>_kassa_payout_json.sql for the
-- migration that loads it now, point that migration at the copy, and add a migration that
-- loads this file again.
CREATE OR REPLACE FUNCTION public.kassa_payout_json(p payouts)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
  v_times text[];
BEGIN
  SELECT array_agg(to_char(t.at, 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE WHEN to_char(t.at, 'US') = '000000' THEN '' ELSE to_char(t.at, '.US') END
           || 'Z' ORDER BY t.n)
    INTO v_times
    FROM (VALUES (1, p.expires_at AT TIME ZONE 'UTC'), (2, p.created_at AT TIME ZONE 'UTC'),
                 (3, p.updated_at AT TIME ZONE 'UTC')) AS t(n, at);
  RETURN '{"id":"' || p.id::text
    || '","wallet_id":"' || p.wallet_id::text
    || '","customer_id":' || to_json(p.customer_id)::text
    || ',"amount":' || p.amount::text
    || ',"currency":' || to_json(p.currency)::text
    || ',"fees":[' || coalesce((
         SELECT string_agg('{"amount":' || (f.line ->> 'amount')
                  || ',"currency":' || to_json(f.line ->> 'currency')::text
                  || ',"reason":' || to_json(f.line ->> 'reason')::text || '}', ',' ORDER BY f.n)
           FROM jsonb_array_elements(p.fees) WITH ORDINALITY AS f(line, n)), '')
    || '],"fee_total":' || p.fee_total::text
    || ',"total":' || (p.amount + p.fee_total)::text
    || ',"payment_option":' || to_json(p.payment_option)::text
    || ',"instrument_id":"' || p.instrument_id::text
    || '","status":' || to_json(p.status)::text
    || ',"status_reason":' || coalesce(to_json(p.status_reason)::text, 'null')
    || ',"next_status":' || CASE
         WHEN p.status = 'PREVIEW' THEN '["PENDING","CANCELLED"]'
         WHEN p.status = 'PENDING' THEN '["PROCESSING","CANCELLED"]'
         WHEN p.status = 'PROCESSING' AND p.connector = 'manual' THEN '["COMPLETED","FAILED"]'
         ELSE '[]' END
    || ',"action":"NONE","expires_at":"' || v_times[1]
    || '","reference":' || coalesce(to_json(p.reference)::text, 'null')
    || ',"description":' || coalesce(to_json(p.description)::text, 'null')
    || ',"metadata":{' || coalesce((
         SELECT string_agg(to_json(m.key)::text || ':' || m.value::text, ',' ORDER BY m.n)
           FROM jsonb_each(p.metadata) WITH ORDINALITY AS m(key, value, n)), '')
    || '},"transaction_id":' || coalesce('"' || p.transaction_id::text || '"', 'null')
    -- Each entry's values as the row keeps them (strings and nulls: compact; anything nested
    -- would keep PostgreSQL's spacing, the same JSON).
    || ',"history":[' || coalesce((
         SELECT string_agg(CASE WHEN jsonb_typeof(h.entry) = 'object' THEN '{' || coalesce((
                  SELECT string_agg(to_json(e.key)::text || ':' || e.value::text, ','
                                    ORDER BY e.n)
                    FROM jsonb_each(h.entry) WITH ORDINALITY AS e(key, value, n)), '') || '}'
                  ELSE h.entry::text END, ',' ORDER BY h.n)
           FROM jsonb_array_elements(p.history) WITH ORDINALITY AS h(entry, n)), '')
    || '],"created_at":"' || v_times[2]
    || '","updated_at":"' || v_times[3] || '"}';
END $function$
