"""Customers' payment instruments (bank accounts, cards), kept only masked."""
