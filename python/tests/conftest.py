import pytest


@pytest.fixture
def log_dir(tmp_path):
    """A path for a new log directory."""
    return tmp_path / "audit"
