from kassa.kit.errors import KassaError


class InvalidIdempotencyKey(KassaError):
    code = "invalid_idempotency_key"
    status = 400
    title = "The Idempotency-Key header is not valid"


class IdempotencyKeyReused(KassaError):
    code = "idempotency_key_reused"
    status = 422
    title = "The Idempotency-Key was used for another request"


class IdempotencyKeyInUse(KassaError):
    code = "idempotency_key_in_use"
    status = 409
    title = "A request with this Idempotency-Key is still in flight; retry it shortly"
