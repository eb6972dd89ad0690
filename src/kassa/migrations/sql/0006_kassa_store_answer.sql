CREATE FUNCTION kassa_store_answer(
  p_tenant uuid, p_key text, p_fingerprint text, p_status integer, p_media text, p_body text,
  p_now timestamptz, p_expires timestamptz) RETURNS void LANGUAGE sql AS $$
  INSERT INTO idempotency_keys (
    tenant_id, key, fingerprint, status_code, media_type, body, created_at, expires_at)
  VALUES (p_tenant, p_key, p_fingerprint, p_status, p_media, convert_to(p_body, 'UTF8'),
          p_now, p_expires)
$$
