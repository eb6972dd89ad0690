from kassa.kit.errors import KassaError


class EndpointDisabled(KassaError):
    code = "webhook_endpoint_disabled"
    status = 409
    title = "The webhook endpoint is disabled"


class NoWebhookEndpoint(KassaError):
    code = "no_webhook_endpoint"
    status = 409
    title = "No enabled webhook endpoint takes this event"
