"""Payouts: withdrawals that hold the money until a payout rail completes or fails them."""
