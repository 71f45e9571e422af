"""Delivery to remote servers: MX selection (mx.py)."""
