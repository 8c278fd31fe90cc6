"""Building blocks shared by the test packages (simulators, hooks on them), registered from tests/conftest.py."""
