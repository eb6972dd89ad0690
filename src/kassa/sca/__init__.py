"""Strong Customer Authentication (PSD2) for payouts: the tenant's policy, customers' TOTP
authenticators, and the SCA events a payout's move to PENDING waits on."""
