"""Connecting a Binance account in headless Chromium: the form refuses a key that can trade and
says how to make a read-only one, keeps no secret in the page, and the portfolio page follows the
connection from "sync queued" to its last good sync."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portfolio import tasks
from portfolio.exchange.sync import exchange_sync
from portfolio.services import portfolio_create

pytestmark = pytest.mark.browser


def test_connect_a_read_only_key_and_follow_its_sync(
    page, live_server, sign_in, site_user, binance_account, monkeypatch
):
    queued = []
    monkeypatch.setattr(tasks.exchange_sync_task, "delay", lambda connection_id: queued.append(connection_id))
    portfolio = portfolio_create(owner=site_user, name="Binance")
    sign_in()
    page.goto(f"{live_server.url}/portfolios/{portfolio.id}/")
    page.click("text=Connect Binance")
    page.wait_for_url(f"{live_server.url}/portfolios/{portfolio.id}/connections/add/")

    binance_account.permissions["enableSpotAndMarginTrading"] = True
    page.fill("#id_api_key", binance_account.api_key)
    page.fill("#id_api_secret", binance_account.api_secret)
    page.click("#connection-form button[type=submit]")
    error = page.locator(".field-error").first
    expect(error).to_contain_text("enableSpotAndMarginTrading")
    expect(error).to_contain_text("Enable Reading")
    expect(page.locator("#id_api_secret")).to_have_value("")
    assert binance_account.api_secret not in page.content()

    binance_account.permissions["enableSpotAndMarginTrading"] = False
    page.fill("#id_api_secret", binance_account.api_secret)
    page.click("#connection-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portfolios/{portfolio.id}/#connections")
    item = page.locator("#connections li.connection")
    expect(item).to_contain_text(f"Binance …{binance_account.api_key[-4:]}")
    expect(item.locator(".connection-progress")).to_contain_text("Sync queued")
    expect(item.locator("button", has_text="Sync now")).to_be_disabled()
    assert len(queued) == 1

    exchange_sync(connection_id=queued[0])  # what the worker does with the queued task
    page.reload()
    expect(item.locator(".connection-state")).to_have_text("Active")
    expect(item).to_contain_text("UTC")
    expect(item.locator(".connection-message")).to_contain_text("new transactions")
    assert page.locator("#transactions-table tbody tr").count() > 0
    assert binance_account.api_secret not in page.content()
