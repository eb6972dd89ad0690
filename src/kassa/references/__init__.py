"""References: a merchant's own name for a movement of money, unique per tenant."""
