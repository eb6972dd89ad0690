from kassa.kit.errors import KassaError


class ScaNotEnrolled(KassaError):
    code = "sca_not_enrolled"
    status = 409
    title = "The customer has no active authenticator to complete SCA with"


class ScaAlreadyEnrolled(KassaError):
    code = "sca_already_enrolled"
    status = 409
    title = "The customer already has an active authenticator"


class ScaCodeInvalid(KassaError):
    code = "sca_code_invalid"
    status = 422
    title = "The code is wrong, or was used already"


class ScaEventFailed(KassaError):
    code = "sca_event_failed"
    status = 409
    title = "The SCA event has failed; move the payout to PENDING again for a new one"


class ScaEventExpired(KassaError):
    code = "sca_event_expired"
    status = 409
    title = "The SCA event has expired; move the payout to PENDING again for a new one"


class ScaEventCompleted(KassaError):
    code = "sca_event_completed"
    status = 409
    title = "The SCA event is completed already"


class ScaWrongVerification(KassaError):
    code = "sca_wrong_verification"
    status = 422
    title = "This SCA event is verified another way"
