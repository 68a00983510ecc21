"""Helpers shared by the top-level e2e tests. Kept out of conftest.py because several test
folders have their own conftest.py, and `from conftest import …` would pick up whichever
conftest module was loaded last."""
import secrets

DEV_ADMIN_ID = "p-e2eadmin0001"


def unique(prefix: str = "e2e") -> str:
    """A unique, easily greppable marker string."""
    return f"{prefix}-{secrets.token_hex(12)}"
