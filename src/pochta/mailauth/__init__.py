"""Sender authentication: DKIM signing now; SPF, DKIM/DMARC/ARC verification with the inbound filters."""
