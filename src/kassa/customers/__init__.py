"""``/v1/customers/{customer_id}/tokens``: tokens that act for one customer."""
