"""Kassa: a self-hosted wallet ledger and withdrawal service."""

__version__ = "0.1.0"
