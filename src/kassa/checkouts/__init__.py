"""Checkout sessions and the hosted withdrawal page: the merchant creates a session for a
customer, sends the customer to the session's page, and gets the customer back on its
``return_url`` with the outcome."""
