"""Every kind of page works under the Content-Security-Policy in headless Chromium: charts draw,
Swagger UI and ReDoc render, admin opens, and the browser reports no violation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from portfolio.models import Portfolio, Transaction
from portfolio.services import portfolio_state_rebuild
from tests.reliability import record

pytestmark = pytest.mark.browser

WATCH = """(() => { window.cspViolations = [];
  document.addEventListener('securitypolicyviolation',
    e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI)); })();"""


def test_pages_swagger_and_redoc_work_under_the_policy(page, live_server, sign_in, site_user, btc_1h):
    site_user.is_staff = site_user.is_superuser = True
    site_user.save(update_fields=["is_staff", "is_superuser"])
    newest = btc_1h.candles.order_by("-open_time").values_list("open_time", flat=True).first()
    folio = Portfolio.objects.create(owner=site_user, name="Long term")
    Transaction.objects.create(
        portfolio=folio,
        asset=btc_1h,
        kind="buy",
        quantity=Decimal("0.5"),
        unit_price=Decimal("20000"),
        executed_at=newest - timedelta(days=60),
    )
    portfolio_state_rebuild(portfolio=folio)
    console = []
    page.on("console", lambda msg: console.append(msg.text))
    page.add_init_script(WATCH)
    sign_in()
    checks = {
        "/portfolios/": "main h1",
        f"/portfolios/{folio.id}/": "canvas",
        "/assets/BTCUSDT/": "canvas",
        "/accounts/api-tokens/": "main form",
        "/admin/forecasting/asset/": "#result_list",
        "/api/docs/": ".swagger-ui .info .title",
        "/api/redoc/": "h1:has-text('Make Us Rich API')",
    }
    violations = {}
    for path, selector in checks.items():
        response = page.goto(f"{live_server.url}{path}")
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_selector(selector, timeout=20_000)
        if selector == "canvas":
            assert page.evaluate("window.chartReady.then(C => typeof C)") == "function", path
        violations[path] = page.evaluate("window.cspViolations")
    assert all(v == [] for v in violations.values()), {p: v for p, v in violations.items() if v}
    assert not [m for m in console if "Content Security Policy" in m or "Refused to" in m], console
    record("security", "pages, Swagger UI and ReDoc under the Content-Security-Policy", pages=len(checks))
