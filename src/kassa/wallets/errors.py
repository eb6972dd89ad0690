from kassa.kit.errors import KassaError


class WalletExists(KassaError):
    code = "wallet_exists"
    status = 409
    title = "The customer already has a wallet in this currency"


class WalletFrozen(KassaError):
    code = "wallet_frozen"
    status = 409
    title = "The wallet is frozen"


class WalletClosed(KassaError):
    code = "wallet_closed"
    status = 409
    title = "The wallet is closed"


class WalletNotEmpty(KassaError):
    code = "wallet_not_empty"
    status = 409
    title = "Only a wallet with nothing in it can be closed"
