"""The outbound queue: retry schedule (retry.py) and delivery status notifications (dsn.py), both pure."""
