"""Test helpers: the real services (services.py) and apps over them (apps.py)."""
