from kassa.kit.errors import KassaError


class InvalidStatusTransition(KassaError):
    code = "invalid_status_transition"
    status = 409
    title = "The payout cannot move to that status now"


class PayoutExpired(KassaError):
    code = "payout_expired"
    status = 409
    title = "The payout's preview has expired"


class UnknownPaymentOption(KassaError):
    code = "unknown_payment_option"
    status = 422
    title = "The tenant has no such payment option"


class PaymentOptionRefused(KassaError):
    code = "payment_option_refused"
    status = 422
    title = "The payment option does not take this payout"


class InstrumentNotVerified(KassaError):
    code = "instrument_not_verified"
    status = 409
    title = "The payment instrument is not verified"
