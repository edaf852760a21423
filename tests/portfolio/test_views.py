"""Portfolio pages through the Django test client: access, forms with the services' errors,
paging and filters, a fixed query count, CSV import and export."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forecasting.models import Asset, Candle, Forecast
from portfolio import services, transactions_csv, valuation
from portfolio.models import Portfolio, Transaction
from portfolio.services import portfolio_state_rebuild
from tests.factories import candles
from tests.support.pages import add_transaction_form

# Well in the past, so nothing depends on today's date.
NEWEST = datetime(2022, 6, 30, 23, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAYS = 40


def make_candles(
    asset: Asset, closes: dict[int, Decimal] | None = None, *, hours: int = DAYS * 24, default: Decimal = Decimal("100")
) -> None:
    """Hourly candles ending at NEWEST; `closes` maps hours before NEWEST (0 = newest) to a close."""
    closes = closes or {}
    candles(
        asset,
        [closes.get(back, default) for back in reversed(range(hours))],
        newest=NEWEST,
        interval="1h",
        spread=Decimal("0"),
        volume=Decimal("1"),
    )


@pytest.fixture
def btc(db):
    asset = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", interval="1h")
    # Newest close 120, the close 24 h before it 110, every other hour 100.
    make_candles(asset, {0: Decimal("120"), 24: Decimal("110")})
    return asset


@pytest.fixture
def other(db, django_user_model):
    return django_user_model.objects.create_user(username="bob", password="another-long-passphrase")


@pytest.fixture
def portfolio(user):
    return services.portfolio_create(owner=user, name="Long term")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2022, 6, day, hour, tzinfo=UTC)


@pytest.fixture
def worked(portfolio, btc):
    """Buy 2 BTC at 100 with a fee of 2, then sell 0.5 at 110 with a fee of 1.

    By hand: cost 202, average 101; the sale's basis is 202 × 0.5 / 2 = 50.5 and it brought
    55 − 1 = 54, so realized +3.5. Held 1.5 at cost 151.5; at the newest close 120 it is worth 180,
    unrealized +28.5, total +32. A day earlier the close was 110: 165, so the 24h change is +15
    (+9.09%).
    """
    buy = services.transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="buy",
        quantity=Decimal("2"),
        unit_price=Decimal("100"),
        fee=Decimal("2"),
        executed_at=at(1),
    )
    sell = services.transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="sell",
        quantity=Decimal("0.5"),
        unit_price=Decimal("110"),
        fee=Decimal("1"),
        executed_at=at(10),
    )
    return buy, sell


def text(response) -> str:
    """The page's text with tags removed and whitespace collapsed, for reading like a person."""
    page = response.content.decode()
    page = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))


def tx_form(**overrides) -> dict:
    data = {
        "symbol": "BTCUSDT",
        "kind": "buy",
        "quantity": "1",
        "unit_price": "100",
        "fee": "0",
        "executed_at": "2022-06-05T10:00:00",
        "note": "",
    }
    data.update(overrides)
    return data


# --- access --------------------------------------------------------------------------------------


def private_urls(portfolio_id: int, tx_id: int) -> list[str]:
    return [
        reverse("portfolio:dashboard"),
        reverse("portfolio:detail", args=[portfolio_id]),
        reverse("portfolio:edit", args=[portfolio_id]),
        reverse("portfolio:delete", args=[portfolio_id]),
        reverse("portfolio:transaction-add", args=[portfolio_id]),
        reverse("portfolio:transaction-edit", args=[portfolio_id, tx_id]),
        reverse("portfolio:transaction-delete", args=[portfolio_id, tx_id]),
        reverse("portfolio:import", args=[portfolio_id]),
        reverse("portfolio:export", args=[portfolio_id]),
        reverse("password_change"),
        reverse("password_change_done"),
    ]


def test_anonymous_visitor_is_sent_to_sign_in_from_every_private_page(client, worked, portfolio):
    buy, _ = worked
    for url in private_urls(portfolio.pk, buy.pk):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{reverse('login')}?next={url}", url
    # Writing needs sign-in too, and nothing is written.
    response = client.post(reverse("portfolio:transaction-delete", args=[portfolio.pk, buy.pk]))
    assert response.status_code == 302
    assert Transaction.objects.filter(pk=buy.pk).exists()


def test_owner_sees_every_page(signed_in, worked, portfolio):
    buy, _ = worked
    for url in private_urls(portfolio.pk, buy.pk):
        assert signed_in.get(url).status_code == 200, url


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_portfolio_and_transactions_answer_404(client, other, worked, portfolio, method):
    buy, sell = worked
    client.force_login(other)
    for url in private_urls(portfolio.pk, buy.pk)[1:9]:
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url)
    assert Portfolio.objects.filter(pk=portfolio.pk, name="Long term").exists()
    assert Transaction.objects.filter(pk__in=[buy.pk, sell.pk]).count() == 2
    # Nor do they show on the other user's dashboard.
    assert "Long term" not in text(client.get(reverse("portfolio:dashboard")))


def test_a_transaction_is_only_found_under_its_own_portfolio(signed_in, user, worked):
    buy, _ = worked
    second = services.portfolio_create(owner=user, name="Second")
    url = reverse("portfolio:transaction-edit", args=[second.pk, buy.pk])
    assert signed_in.get(url).status_code == 404


def test_landing_page_for_visitors_and_dashboard_for_signed_in_users(client, user):
    response = client.get("/")
    assert response.status_code == 200
    assert 'href="/accounts/signup/"' in response.content.decode()
    assert 'href="/accounts/login/"' in response.content.decode()
    assert "forecast" in text(response).lower()

    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("portfolio:dashboard")


# --- dashboard ------------------------------------------------------------------------------------


def test_dashboard_empty_state_then_create_a_portfolio(signed_in):
    response = signed_in.get(reverse("portfolio:dashboard"))
    assert "No portfolio yet — create one" in text(response)

    response = signed_in.post(reverse("portfolio:dashboard"), {"name": "  Savings ", "description": ""})
    created = Portfolio.objects.get(name="Savings")
    assert response.status_code == 302
    assert response["Location"] == reverse("portfolio:detail", args=[created.pk])
    page = signed_in.get(response["Location"])
    assert "No transactions yet" in text(page)

    # The same name again is a form error, not a crash.
    response = signed_in.post(reverse("portfolio:dashboard"), {"name": "Savings"})
    assert response.status_code == 200
    assert "You already have a portfolio called “Savings”." in text(response)
    assert Portfolio.objects.filter(name="Savings").count() == 1


def test_dashboard_lists_value_24h_change_and_profit_and_loss(signed_in, user, worked, portfolio):
    services.portfolio_create(owner=user, name="Zero yet")  # sorts after "Long term"
    response = signed_in.get(reverse("portfolio:dashboard"))
    page = text(response)
    row = re.search(r"Long term (.*?) Zero yet", page).group(1)
    # Every amount says its currency.
    assert row.split() == ["180.00", "USDT", "+15.00", "USDT", "+9.09%", "+32.00", "USDT", "2"]
    assert "No portfolio yet" not in page


# --- portfolio page -----------------------------------------------------------------------------


def test_portfolio_page_holdings_methods_and_returns(signed_in, worked, portfolio):
    response = signed_in.get(reverse("portfolio:detail", args=[portfolio.pk]))
    page = text(response)
    # Asset, quantity, average cost, price, market value, allocation, unrealized, realized, total,
    # return (total P&L over the 202 paid: 32 / 202 = 15.84%), every amount with its currency.
    assert (
        "BTCUSDT 1.5 BTC 101.00 USDT 120.00 USDT 180.00 USDT 100.00% +28.50 USDT +3.50 USDT +32.00 USDT +15.84%" in page
    )
    assert "Value 180.00 USDT" in page and "Cost basis of holdings 151.50 USDT" in page
    assert "+28.50 USDT unrealized, +3.50 USDT realized" in page
    # The newest candle by its open time, as the asset page names it (not its close, 23:59:59).
    # Said once, by the data-age line, while every holding's candle is the newest.
    assert "Prices are the closes of the newest candles, in USDT." in page
    assert "Newest candle (BTCUSDT): 2022-06-30 23:00 UTC" in page
    assert valuation.COST_BASIS_METHOD in page
    assert valuation.RETURN_METHOD in page
    for label in ("24 hours", "7 days", "30 days", "Year to date", "1 year", "Since start"):
        assert re.search(rf"{label} [+-]?[\d,]+\.\d\d USDT [+-]?[\d,]+\.\d\d%", page), label
    # Since start, by hand: the value 180 less the net money moved in (202 − 54 = 148) is +32.
    assert re.search(r"Since start \+32\.00 USDT ", page)
    # No forecast in the database: the empty state says so and what happens next.
    assert "No forecast yet" in page
    charts = response.context["charts"]
    assert charts["allocation"] == [{"label": "BTCUSDT", "value": "180.00000000", "share": "100.00000000"}]
    # One point per UTC day from the first transaction (1 June) to the newest candle (30 June).
    assert len(charts["history"]) == 30
    assert charts["history"][-1]["value"] == "180.00000000"
    assert charts["history"][-1]["invested"] == "148.00000000"
    assert charts["forecast"] is None


def baseline_forecast(asset: Asset, *, steps: int = 24, made_at: datetime | None = None) -> Forecast:
    f = Forecast.objects.create(
        asset=asset,
        kind=Forecast.Kind.BASELINE,
        source="baseline",
        origin_time=NEWEST,
        last_close=Decimal("120"),
        quantiles=[0.1, 0.5, 0.9],
        steps=[
            {"target_time": (NEWEST + (k + 1) * HOUR).isoformat(), "values": ["110", "120", "130"]}
            for k in range(steps)
        ],
    )
    if made_at:
        Forecast.objects.filter(pk=f.pk).update(made_at=made_at)
    return f


def test_portfolio_page_projected_value_states_method_age_and_baseline(signed_in, worked, portfolio, btc):
    baseline_forecast(btc, made_at=timezone.now() - timedelta(hours=3))
    response = signed_in.get(reverse("portfolio:detail", args=[portfolio.pk]))
    page = text(response)
    assert valuation.FORECAST_METHOD in page
    assert "No forecast yet" not in page
    assert "3 hours ago" in page
    # What covers the value is said in one sentence, in shares of the value.
    assert "No trained model serves any holding yet; the statistical baseline band covers 100%." in page
    assert "The baseline is a statistical band (or, while an asset's history is short, a naive volatility band)" in page
    assert "stale" not in page.lower()
    forecast = response.context["charts"]["forecast"]
    assert len(forecast["points"]) == 24
    # 1.5 BTC × the 10%, 50% and 90% prices.
    assert forecast["points"][0] | {"t": 0} == {
        "t": 0,
        "low": "165.00000000",
        "median": "180.00000000",
        "high": "195.00000000",
    }
    assert forecast["start"]["value"] == "180.00000000"


def test_projection_says_which_share_a_model_covers_and_gives_every_forecast_holding_a_band(
    signed_in, worked, portfolio, btc
):
    """1.5 BTC at 120 (180) forecast by a model, 10 ETH at 12 (120) by the baseline, 1 BNB at 200 with
    no forecast row: 36%, 24% and 40% of the 500 held."""
    from tests.factories import ModelVersionFactory

    eth = Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT", interval="1h")
    bnb = Asset.objects.create(symbol="BNBUSDT", base_asset="BNB", quote_asset="USDT", interval="1h")
    make_candles(eth, default=Decimal("12"))
    make_candles(bnb, default=Decimal("200"))
    for asset, quantity, price in ((eth, "10", "10"), (bnb, "1", "150")):
        services.transaction_create(
            portfolio=portfolio,
            asset=asset,
            kind="buy",
            quantity=Decimal(quantity),
            unit_price=Decimal(price),
            executed_at=at(2),
        )
    model = baseline_forecast(btc)
    version = ModelVersionFactory(asset=btc, status="champion")
    Forecast.objects.filter(pk=model.pk).update(kind=Forecast.Kind.MODEL, source="v1", model_version=version)
    eth_band = baseline_forecast(eth)
    Forecast.objects.filter(pk=eth_band.pk).update(
        steps=[{"target_time": s["target_time"], "values": ["11", "12", "13"]} for s in eth_band.steps]
    )
    response = signed_in.get(reverse("portfolio:detail", args=[portfolio.pk]))
    page = text(response)
    assert (
        "A trained model forecasts 36% of this value (BTCUSDT); the statistical baseline band covers 24%; "
        "40% has no forecast yet and is counted at its last price."
    ) in page
    # Each forecast holding widens the band: 1.5 × (110, 130) for BTC and 10 × (11, 13) for ETH around
    # BNB's flat 200.
    first = response.context["charts"]["forecast"]["points"][0]
    assert (first["low"], first["median"], first["high"]) == ("475.00000000", "500.00000000", "525.00000000")


def test_transactions_are_paged_50_at_a_time_and_filtered(signed_in, portfolio, btc):
    eth = Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT")
    rows = [
        Transaction(
            portfolio=portfolio,
            asset=btc,
            kind="buy",
            quantity=Decimal("1"),
            unit_price=Decimal("100"),
            executed_at=at(1) + i * HOUR,
        )
        for i in range(55)
    ]
    rows += [
        Transaction(
            portfolio=portfolio,
            asset=btc,
            kind="sell",
            quantity=Decimal("1"),
            unit_price=Decimal("100"),
            executed_at=at(20) + i * HOUR,
        )
        for i in range(5)
    ]
    rows += [
        Transaction(
            portfolio=portfolio,
            asset=eth,
            kind="reward",
            quantity=Decimal("0.1"),
            unit_price=Decimal("0"),
            executed_at=at(25),
        )
    ]
    Transaction.objects.bulk_create(rows)
    portfolio_state_rebuild(portfolio=portfolio)
    url = reverse("portfolio:detail", args=[portfolio.pk])

    first = signed_in.get(url).content.decode()
    assert first.count("data-tx=") == 50
    assert "Page 1 of 2 · 61 transactions" in first
    second = signed_in.get(url, {"page": 2}).content.decode()
    assert second.count("data-tx=") == 11

    sells = signed_in.get(url, {"kind": "sell"}).content.decode()
    assert sells.count("data-tx=") == 5 and "Sell" in sells
    eth_only = signed_in.get(url, {"asset": "ETHUSDT"}).content.decode()
    assert eth_only.count("data-tx=") == 1
    # Whole days, both ends included: 1 June 12:00 to 2 June 23:00 holds 36 buys.
    days = signed_in.get(url, {"date_from": "2022-06-01", "date_to": "2022-06-02"}).content.decode()
    assert days.count("data-tx=") == 36
    # Paging keeps the filters.
    paged = signed_in.get(url, {"kind": "buy"})
    assert 'href="?kind=buy&amp;page=2#transactions"' in paged.content.decode()
    none = signed_in.get(url, {"date_from": "2022-06-29"})
    assert "No transaction matches these filters." in text(none)


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "2022-06-01", "date_to": "2022-06-02"},
        {"date_to": "2022-06-20"},
        {"date_from": "2022-06-20", "kind": "sell"},
        {"asset": "ETHUSDT", "date_from": "2022-06-25", "date_to": "2022-06-25"},
    ],
)
def test_the_page_and_the_api_filter_transactions_alike(signed_in, user, portfolio, btc, query):
    """One meaning for the date filters: "to 2022-06-02" keeps that day's transactions on the page
    and in the API (the API once read a bare date as its midnight)."""
    from rest_framework.test import APIClient

    eth = Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT")
    rows = [
        Transaction(
            portfolio=portfolio,
            asset=btc,
            kind="buy",
            quantity=Decimal("1"),
            unit_price=Decimal("100"),
            executed_at=at(1) + i * 9 * HOUR,
        )
        for i in range(40)
    ]
    rows += [
        Transaction(
            portfolio=portfolio,
            asset=btc,
            kind="sell",
            quantity=Decimal("1"),
            unit_price=Decimal("100"),
            executed_at=at(20) + i * 11 * HOUR,
        )
        for i in range(6)
    ]
    rows += [
        Transaction(
            portfolio=portfolio,
            asset=eth,
            kind="reward",
            quantity=Decimal("0.1"),
            unit_price=Decimal("0"),
            executed_at=at(25, hour=23),
        )
    ]
    Transaction.objects.bulk_create(rows)
    portfolio_state_rebuild(portfolio=portfolio)
    page = signed_in.get(reverse("portfolio:detail", args=[portfolio.pk]), query).content.decode()
    on_page = sorted(int(i) for i in re.findall(r'data-tx="(\d+)"', page))
    api = APIClient()
    api.force_authenticate(user)
    params = {
        "limit": 500,
        "symbol": query.get("asset"),
        "kind": query.get("kind"),
        "start": query.get("date_from"),
        "end": query.get("date_to"),
    }
    body = api.get(f"/api/v1/portfolios/{portfolio.pk}/transactions/", {k: v for k, v in params.items() if v}).json()
    assert on_page and sorted(t["id"] for t in body["results"]) == on_page


def page_queries(client, portfolio) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("portfolio:detail", args=[portfolio.pk]))
    assert response.status_code == 200
    return len(queries)


def bulk_buys(portfolio, assets, count: int) -> None:
    start = at(1)
    Transaction.objects.bulk_create(
        [
            Transaction(
                portfolio=portfolio,
                asset=assets[i % len(assets)],
                kind="buy",
                quantity=Decimal("0.01"),
                unit_price=Decimal("100"),
                fee=Decimal("0.1"),
                executed_at=start + timedelta(minutes=30 * i),
            )
            for i in range(count)
        ]
    )
    portfolio_state_rebuild(portfolio=portfolio)


def test_portfolio_page_query_count_does_not_grow_with_transactions(signed_in, user, btc):
    eth = Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT", interval="1h")
    make_candles(eth, default=Decimal("10"))
    baseline_forecast(btc)
    baseline_forecast(eth)
    small = services.portfolio_create(owner=user, name="Hundred")
    large = services.portfolio_create(owner=user, name="Two thousand")
    bulk_buys(small, [btc, eth], 100)
    bulk_buys(large, [btc, eth], 2000)

    small_queries = page_queries(signed_in, small)
    large_queries = page_queries(signed_in, large)
    assert small_queries == large_queries
    assert large_queries <= 15
    # Both pages really drew their holdings, the history and the projection.
    response = signed_in.get(reverse("portfolio:detail", args=[large.pk]))
    assert len(response.context["summary"].holdings) == 2
    assert response.context["summary"].transactions == 2000
    assert len(response.context["charts"]["history"]) > 1
    assert response.context["charts"]["forecast"] is not None
    assert response.content.decode().count("data-tx=") == 50


def test_dashboard_query_count_does_not_grow_with_transactions(signed_in, user, btc):
    eth = Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT", interval="1h")
    make_candles(eth, default=Decimal("10"))
    folio = services.portfolio_create(owner=user, name="Growing")
    counts = []
    for total in (100, 2000):
        bulk_buys(folio, [btc, eth], total - folio.transactions.count())
        with CaptureQueriesContext(connection) as queries:
            response = signed_in.get(reverse("portfolio:dashboard"))
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert response.context["rows"][0]["summary"].transactions == 2000


# --- transaction forms --------------------------------------------------------------------------


def test_add_a_transaction_through_the_form(signed_in, portfolio, btc):
    url = reverse("portfolio:transaction-add", args=[portfolio.pk])
    page = signed_in.get(url).content.decode()
    for field in ("symbol", "kind", "quantity", "unit_price", "fee", "executed_at", "note"):
        assert f'<label for="id_{field}">' in page, field
    assert '<option value="BTCUSDT">' in page  # tracked assets offered as suggestions

    response = signed_in.post(
        url, tx_form(symbol="btcusdt", quantity="0.25", unit_price="19500.5", fee="1.5", note="first")
    )
    assert response.status_code == 302
    tx = Transaction.objects.get(portfolio=portfolio)
    assert (tx.asset, tx.kind, tx.quantity, tx.unit_price, tx.fee, tx.note) == (
        btc,
        "buy",
        Decimal("0.25"),
        Decimal("19500.5"),
        Decimal("1.5"),
        "first",
    )
    assert tx.executed_at == datetime(2022, 6, 5, 10, tzinfo=UTC)


def test_add_form_shows_the_services_field_errors(signed_in, portfolio, btc):
    future = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    response = signed_in.post(
        reverse("portfolio:transaction-add", args=[portfolio.pk]),
        tx_form(quantity="0", unit_price="-5", executed_at=future),
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["quantity"] == ["Quantity must be above zero."]
    assert form.errors["unit_price"] == ["Price cannot be negative."]
    assert form.errors["executed_at"] == ["The date cannot be in the future."]
    page = text(response)
    for message in ("Quantity must be above zero.", "Price cannot be negative.", "The date cannot be in the future."):
        assert message in page
    assert not Transaction.objects.exists()


def test_oversell_is_refused_on_create_edit_and_delete(signed_in, worked, portfolio):
    buy, sell = worked  # 2 bought, 0.5 sold
    add = reverse("portfolio:transaction-add", args=[portfolio.pk])
    response = signed_in.post(add, tx_form(kind="sell", quantity="1.6", executed_at="2022-06-20T00:00:00"))
    assert response.status_code == 200
    assert "Not enough BTC" in response.context["form"].errors["quantity"][0]
    assert "more than the 1.5 held then" in text(response)

    # Lowering the buy below what was sold later breaks the history.
    edit = reverse("portfolio:transaction-edit", args=[portfolio.pk, buy.pk])
    response = signed_in.post(
        edit, tx_form(quantity="0.4", unit_price="100", fee="2", executed_at="2022-06-01T12:00:00")
    )
    assert response.status_code == 200
    assert "Not enough BTC" in text(response) and "more than the 0.4 held then" in text(response)
    buy.refresh_from_db()
    assert buy.quantity == Decimal("2")

    # So does deleting it: the confirmation page says why and keeps it.
    delete = reverse("portfolio:transaction-delete", args=[portfolio.pk, buy.pk])
    assert "Delete this transaction?" in text(signed_in.get(delete))
    response = signed_in.post(delete)
    assert response.status_code == 200
    page = text(response)
    assert "Not enough BTC" in page and "Nothing was deleted." in page
    assert Transaction.objects.filter(pk=buy.pk).exists()

    # Deleting the sell is fine, and then so is deleting the buy.
    assert signed_in.post(reverse("portfolio:transaction-delete", args=[portfolio.pk, sell.pk])).status_code == 302
    assert signed_in.post(delete).status_code == 302
    assert not portfolio.transactions.exists()


def test_edit_form_is_prefilled_and_saves(signed_in, worked, portfolio):
    buy, _ = worked
    url = reverse("portfolio:transaction-edit", args=[portfolio.pk, buy.pk])
    form = signed_in.get(url).context["form"]
    assert form["symbol"].value() == "BTCUSDT" and form["quantity"].value() == "2"
    assert 'value="2022-06-01T12:00:00"' in str(form["executed_at"])

    response = signed_in.post(
        url, tx_form(quantity="3", unit_price="90", fee="2", note="more", executed_at="2022-06-01T12:00:00")
    )
    assert response.status_code == 302
    buy.refresh_from_db()
    assert (buy.quantity, buy.unit_price, buy.note) == (Decimal("3"), Decimal("90"), "more")


def test_untracked_symbol_is_offered_for_tracking_then_tracked_and_saved(signed_in, portfolio, settings, data_dir):
    settings.KLINES_DIR = str(data_dir)  # offline: tracking checks the kline file exists, no Binance
    url = reverse("portfolio:transaction-add", args=[portfolio.pk])

    response = signed_in.post(url, tx_form(symbol="ethusdt"))
    assert response.status_code == 200
    assert "ETHUSDT is not tracked yet." in text(response)
    assert '<label for="id_track">Track ETHUSDT</label>' in response.content.decode()
    assert not Asset.objects.filter(symbol="ETHUSDT").exists()
    assert not Transaction.objects.exists()

    response = signed_in.post(url, tx_form(symbol="ethusdt", track="on"))
    assert response.status_code == 302
    eth = Asset.objects.get(symbol="ETHUSDT")
    assert eth.tracked and (eth.base_asset, eth.quote_asset) == ("ETH", "USDT")
    assert Transaction.objects.get().asset == eth


def test_tracking_failure_is_a_clear_form_error(signed_in, portfolio, settings, data_dir):
    settings.KLINES_DIR = str(data_dir)
    response = signed_in.post(
        reverse("portfolio:transaction-add", args=[portfolio.pk]), tx_form(symbol="NOPEUSDT", track="on")
    )
    assert response.status_code == 200
    error = response.context["form"].errors["symbol"][0]
    assert error.startswith("Could not track NOPEUSDT: No kline file for NOPEUSDT 1h")
    assert '<label for="id_track">Track NOPEUSDT</label>' in response.content.decode()
    assert not Asset.objects.filter(symbol="NOPEUSDT").exists()
    assert not Transaction.objects.exists()


def test_one_person_may_start_tracking_only_a_few_new_pairs(signed_in, user, portfolio, settings, data_dir):
    settings.KLINES_DIR = str(data_dir)
    settings.MAX_TRACKED_PER_USER = 2
    url = reverse("portfolio:transaction-add", args=[portfolio.pk])
    for symbol in ("ETHUSDT", "BNBUSDT"):
        assert signed_in.post(url, tx_form(symbol=symbol, track="on")).status_code == 302
    assert set(Asset.objects.filter(tracked_by=user).values_list("symbol", flat=True)) == {"ETHUSDT", "BNBUSDT"}
    response = signed_in.post(url, tx_form(symbol="BTCUSDT", track="on"))
    assert response.status_code == 200
    assert response.context["form"].errors["symbol"] == [
        "Could not track BTCUSDT: you have started tracking 2 pairs, the most one account may; ask staff to track "
        "BTCUSDT, or use a pair that is tracked already."
    ]
    assert not Asset.objects.filter(symbol="BTCUSDT").exists()
    # A pair already tracked costs nothing: adding to it needs no allowance.
    assert signed_in.post(url, tx_form(symbol="ETHUSDT")).status_code == 302
    # Staff are not limited.
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    assert signed_in.post(url, tx_form(symbol="BTCUSDT", track="on")).status_code == 302
    assert Asset.objects.get(symbol="BTCUSDT").tracked_by is None


# --- portfolio rename and delete ------------------------------------------------------------------


def test_rename_and_delete_a_portfolio(signed_in, user, worked, portfolio):
    services.portfolio_create(owner=user, name="Taken")
    url = reverse("portfolio:edit", args=[portfolio.pk])
    response = signed_in.post(url, {"name": "Taken"})
    assert "You already have a portfolio called “Taken”." in text(response)
    response = signed_in.post(url, {"name": "Renamed", "description": "Coins I keep"})
    assert response.status_code == 302
    portfolio.refresh_from_db()
    assert (portfolio.name, portfolio.description) == ("Renamed", "Coins I keep")

    delete = reverse("portfolio:delete", args=[portfolio.pk])
    assert "its 2 transactions" in text(signed_in.get(delete))
    response = signed_in.post(delete)
    assert response["Location"] == reverse("portfolio:dashboard")
    assert not Portfolio.objects.filter(pk=portfolio.pk).exists()
    assert not Transaction.objects.exists()


# --- CSV ----------------------------------------------------------------------------------------


def upload(content: str, name: str = "tx.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


def test_import_page_documents_the_columns(signed_in, portfolio):
    page = text(signed_in.get(reverse("portfolio:import", args=[portfolio.pk])))
    assert ",".join(transactions_csv.CSV_COLUMNS) in page
    for name, help_text in transactions_csv.CSV_HELP.items():
        assert f"{name} {help_text}" in page


def test_csv_with_bad_rows_lists_every_line_error_and_imports_nothing(signed_in, portfolio, btc):
    content = (
        "executed_at,kind,symbol,quantity,unit_price,fee,note\n"
        "2022-06-01T10:00:00Z,buy,BTCUSDT,1,100,0,fine\n"
        "2022-06-02T10:00:00Z,borrow,BTCUSDT,1,100,0,\n"
        "2022-06-03T10:00:00Z,buy,BTCUSDT,-1,100,0,\n"
        "2022-06-04T10:00:00Z,buy,DOGEUSDT,1,0.1,0,\n"
        "not a date,buy,BTCUSDT,1,100,0,\n"
    )
    response = signed_in.post(reverse("portfolio:import", args=[portfolio.pk]), {"file": upload(content)})
    assert response.status_code == 200
    items = [
        re.sub(r"<[^>]+>", "", li)
        for li in re.findall(
            r"<li>(.*?)</li>", response.content.decode().split('id="import-errors"')[1].split("</div>")[0]
        )
    ]
    assert [i.split(":")[0] for i in items] == ["line 3", "line 4", "line 5", "line 6"]
    assert "borrow" in items[0] and "above zero" in items[1] and "DOGEUSDT is not tracked" in items[2]
    assert "Nothing was imported." in text(response)
    assert not portfolio.transactions.exists()


def test_csv_duplicates_are_reported_not_stored_twice(signed_in, portfolio, btc):
    content = (
        "executed_at,kind,symbol,quantity,unit_price\n"
        "2022-06-01T10:00:00Z,buy,BTCUSDT,1,100\n"
        "2022-06-02T10:00:00Z,buy,BTCUSDT,2,100\n"
    )
    url = reverse("portfolio:import", args=[portfolio.pk])
    response = signed_in.post(url, {"file": upload(content)}, follow=True)
    assert "Imported 2 transactions." in text(response)
    response = signed_in.post(url, {"file": upload(content + "2022-06-03T10:00:00Z,buy,BTCUSDT,3,100\n")}, follow=True)
    assert "Imported 1 transaction. 2 already in the portfolio and skipped (lines 2, 3)." in text(response)
    assert portfolio.transactions.count() == 3

    # Alongside errors, the duplicates are named too.
    response = signed_in.post(url, {"file": upload(content + "2022-06-04T10:00:00Z,buy,BTCUSDT,x,100\n")})
    page = text(response)
    assert "line 4: quantity 'x' is not a number" in page
    assert "would be skipped rather than stored twice: lines 2, 3." in page
    assert portfolio.transactions.count() == 3


def test_csv_upload_size_is_capped(signed_in, portfolio, btc):
    header = "executed_at,kind,symbol,quantity,unit_price\n"
    big = header + "x" * (5 * 1024 * 1024)
    response = signed_in.post(reverse("portfolio:import", args=[portfolio.pk]), {"file": upload(big)})
    assert response.status_code == 200
    assert "the limit is 5 MB" in response.context["form"].errors["file"][0]
    assert not portfolio.transactions.exists()


def test_csv_that_is_not_utf8_is_refused_clearly(signed_in, portfolio, btc):
    raw = SimpleUploadedFile("tx.csv", "executed_at,kind,symbol,quantity,unit_price\nnote,é\n".encode("latin-1"))
    response = signed_in.post(reverse("portfolio:import", args=[portfolio.pk]), {"file": raw})
    assert "not UTF-8" in response.context["form"].errors["file"][0]


@pytest.mark.parametrize(
    "raw, refusal",
    [
        ("executed_at,kind,symbol,quantity,unit_price\nnote,é\n".encode("latin-1"), "The file is not UTF-8 text"),
        (b"x" * (transactions_csv.MAX_CSV_BYTES + 1), "The file is larger than 5 MB, and the limit is 5 MB a file."),
    ],
    ids=["latin-1", "too large"],
)
def test_the_page_and_the_api_read_an_upload_by_one_rule(signed_in, user, portfolio, btc, raw, refusal):
    """Size and decoding of an uploaded CSV, once for both (they were written three times)."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(user)

    def on_page(data: bytes):
        return signed_in.post(reverse("portfolio:import", args=[portfolio.pk]), {"file": SimpleUploadedFile("t", data)})

    def by_api(data: bytes):
        url = f"/api/v1/portfolios/{portfolio.pk}/import-csv/"
        return api.post(url, {"file": SimpleUploadedFile("t", data)}, format="multipart")

    [page_error] = on_page(raw).context["form"].errors["file"]
    assert page_error.startswith(refusal) and by_api(raw).json()["error"]["message"] == page_error
    # A byte-order mark, as spreadsheets write one, is read past by both.
    good = "\ufeffexecuted_at,kind,symbol,quantity,unit_price\n2022-06-01T10:00:00Z,buy,BTCUSDT,1,100\n".encode()
    assert on_page(good).status_code == 302
    answer = by_api(good)  # the same line again: a duplicate, so it was read
    assert answer.status_code == 201 and answer.json() == {"created": 0, "duplicates": [2]}


def test_export_then_import_into_a_new_portfolio_round_trips(signed_in, user, worked, portfolio, btc):
    services.transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="reward",
        quantity=Decimal("0.00012345"),
        unit_price=Decimal("0"),
        executed_at=at(12, 3),
        note='staking, "weekly"',
    )
    response = signed_in.get(reverse("portfolio:export", args=[portfolio.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="long-term-transactions.csv"'
    exported = response.content.decode()
    assert exported.splitlines()[0] == ",".join(transactions_csv.CSV_COLUMNS)
    assert len(exported.splitlines()) == 4

    copy = services.portfolio_create(owner=user, name="Copy")
    response = signed_in.post(reverse("portfolio:import", args=[copy.pk]), {"file": upload(exported)})
    assert response.status_code == 302

    def rows(p):
        return sorted(
            p.transactions.values_list("asset_id", "kind", "quantity", "unit_price", "fee", "executed_at", "note")
        )

    assert rows(copy) == rows(portfolio)
    again = signed_in.get(reverse("portfolio:export", args=[copy.pk])).content.decode()
    assert again == exported


# --- admin --------------------------------------------------------------------------------------


def test_admin_deletion_keeps_the_history_valid_and_users_can_still_be_deleted(
    client, user, worked, portfolio, django_user_model
):
    buy, sell = worked
    staff = django_user_model.objects.create_superuser(username="staff", password="staff-passphrase-1")
    client.force_login(staff)
    assert client.get(reverse("admin:portfolio_transaction_changelist")).status_code == 200

    url = reverse("admin:portfolio_transaction_delete", args=[buy.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert "Not enough BTC" in text(response)
    assert Transaction.objects.filter(pk=buy.pk).exists()

    response = client.post(reverse("admin:portfolio_transaction_delete", args=[sell.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Transaction.objects.filter(pk=sell.pk).exists()

    # A user's deletion takes their portfolios and transactions along.
    response = client.post(reverse("admin:auth_user_delete", args=[user.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Portfolio.objects.filter(pk=portfolio.pk).exists()
    assert not Transaction.objects.exists()


def test_a_form_submitted_twice_adds_one_transaction(signed_in, portfolio, btc):
    data = add_transaction_form(signed_in, portfolio)
    url = reverse("portfolio:transaction-add", args=[portfolio.pk])
    assert signed_in.post(url, data).status_code == 302
    assert signed_in.post(url, data).status_code == 302  # a double click, or the browser resending
    assert portfolio.transactions.count() == 1
    # A new form is a new transaction, even with the same values.
    assert signed_in.post(url, add_transaction_form(signed_in, portfolio)).status_code == 302
    assert portfolio.transactions.count() == 2


def test_portfolio_pages_warn_when_the_prices_are_old(signed_in, worked, portfolio, btc):
    """The newest candle is from 2022: both the dashboard and the portfolio page say so, naming it;
    with a fresh candle both still say how old it is, without the warning."""
    for url in (reverse("portfolio:dashboard"), reverse("portfolio:detail", args=[portfolio.pk])):
        page = text(signed_in.get(url))
        assert "Old prices. Newest candle (BTCUSDT): 2022-06-30 23:00 UTC" in page and "closed 4 years" in page
    # A candle from the last hour: no warning, the dashboard still says how old it is.
    fresh = timezone.now().replace(minute=0, second=0, microsecond=0) - HOUR
    Candle.objects.create(
        asset=btc,
        interval="1h",
        open_time=fresh,
        close_time=fresh + HOUR - timedelta(milliseconds=1),
        open=Decimal("120"),
        high=Decimal("121"),
        low=Decimal("119"),
        close=Decimal("120"),
        volume=Decimal("1"),
    )
    for url in (reverse("portfolio:dashboard"), reverse("portfolio:detail", args=[portfolio.pk])):
        page = text(signed_in.get(url))
        assert "Old prices." not in page and f"Newest candle (BTCUSDT): {fresh:%Y-%m-%d %H:%M} UTC" in page, url


def test_the_prices_line_names_the_newest_candle_when_a_holding_lags(signed_in, worked, portfolio):
    # ETH's candles stop six hours before BTC's: the data-age line names the stalest (ETH), so the
    # prices line says when the newest one is.
    eth = Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT", interval="1h")
    candles(eth, [Decimal("50")] * 48, newest=NEWEST - 6 * HOUR, interval="1h", spread=Decimal("0"))
    services.transaction_create(
        portfolio=portfolio,
        asset=eth,
        kind="buy",
        quantity=Decimal("1"),
        unit_price=Decimal("50"),
        fee=Decimal("0"),
        executed_at=at(29),
    )
    page = text(signed_in.get(reverse("portfolio:detail", args=[portfolio.pk])))
    assert "Prices are the closes of the newest candles (newest candle 2022-06-30 23:00 UTC" in page
    assert "Newest candle (ETHUSDT): 2022-06-30 17:00 UTC" in page
