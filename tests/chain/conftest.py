"""Chain tests run on anvil (the ``devchain`` fixture, from tests/devchain.py)."""

from tests.devchain import devchain  # noqa: F401 - until tests/conftest.py registers the plugin
