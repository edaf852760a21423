"""pytest fixtures for the fake Binance server (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest

from .binance_server import FakeBinanceServer


@pytest.fixture(scope="session")
def fake_binance_session(data_dir):
    # One server for the session: its CSV cache makes later tests fast.
    with FakeBinanceServer(data_dir) as server:
        yield server


@pytest.fixture
def fake_binance(fake_binance_session, settings):
    """A healthy fake Binance on the real clock, with settings.BINANCE_API_URL pointing at it."""
    server = fake_binance_session
    server.reset()
    settings.BINANCE_API_URL = server.api_url
    settings.KLINES_DIR = ""  # offline mode would bypass Binance
    yield server
    server.reset()
