"""What the API accepts and how it answers: validation errors with the error body, decimals as
strings, times in ISO 8601 UTC, page limits, filters and ordering, CSV import, retrain."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from forecasting.models import Candle, ModelVersion, TrainingRun
from portfolio.models import Transaction
from portfolio.services import portfolio_state_rebuild
from tests.support.world import HOUR, ISO_UTC, NEWEST, T0, assert_error, make_candles, make_forecast

TX = {
    "symbol": "BTCUSDT",
    "kind": "buy",
    "quantity": "0.5",
    "unit_price": "110",
    "fee": "0.1",
    "executed_at": "2022-06-03T00:00:00Z",
}


def tx_url(w) -> str:
    return f"/api/v1/portfolios/{w.portfolio.id}/transactions/"


# --- validation errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"quantity": "abc"}, "quantity", "A valid number is required."),
        ({"quantity": "1.123456789"}, "quantity", "no more than 8 decimal places"),
        ({"unit_price": "1e30"}, "unit_price", "no more than 28 digits"),
        ({"quantity": "NaN"}, "quantity", "A valid number is required."),
        ({"quantity": "-2"}, "quantity", "Quantity must be above zero."),
        ({"quantity": "0"}, "quantity", "Quantity must be above zero."),
        ({"fee": "-1"}, "fee", "Fee cannot be negative."),
        ({"unit_price": "-5"}, "unit_price", "Price cannot be negative."),
        ({"executed_at": "2999-01-01T00:00:00Z"}, "executed_at", "The date cannot be in the future."),
        ({"executed_at": "yesterday"}, "executed_at", "Datetime has wrong format."),
        ({"executed_at": "0001-01-02T00:00:00Z"}, "executed_at", "cannot be before 2009-01-03"),
        ({"symbol": "NOPEUSDT"}, "symbol", "NOPEUSDT is not tracked; /api/v1/assets/ lists the tracked assets"),
        ({"kind": "gift"}, "kind", '"gift" is not a valid choice.'),
    ],
)
def test_invalid_transaction_is_refused_with_the_error_body(world, changes, field, message):
    before = Transaction.objects.count()
    response = world.client("owner").post(tx_url(world), {**TX, **changes}, format="json")
    error = assert_error(response, 400, field=field)
    assert error["code"] == "invalid"
    assert any(message in m for m in error["fields"][field]), error
    assert error["message"].startswith(f"{field}: ")
    assert Transaction.objects.count() == before


def test_missing_fields_are_all_named(world):
    error = assert_error(world.client("owner").post(tx_url(world), {}, format="json"), 400)
    assert set(error["fields"]) == {"symbol", "kind", "quantity", "executed_at"}
    assert error["fields"]["quantity"] == ["This field is required."]


def test_oversell_is_refused_with_what_was_held(world):
    """1 BTC bought on June 1st, 0.25 sold on June 2nd: selling 0.8 more on June 3rd is too much."""
    body = {**TX, "kind": "sell", "quantity": "0.8"}
    error = assert_error(world.client("owner").post(tx_url(world), body, format="json"), 400, field="quantity")
    assert error["fields"]["quantity"] == [
        "Not enough BTC: sell of 0.8 on 2022-06-03 00:00 UTC is more than the 0.75 held then."
    ]
    assert error["message"] == "quantity: " + error["fields"]["quantity"][0]


def test_an_edit_that_would_oversell_later_is_refused(world):
    url = f"{tx_url(world)}{world.buy.id}/"
    error = assert_error(world.client("owner").patch(url, {"quantity": "0.1"}, format="json"), 400, field="quantity")
    assert "sell of 0.25" in error["fields"]["quantity"][0]
    world.buy.refresh_from_db()
    assert world.buy.quantity == Decimal("1")


def test_a_portfolio_name_is_unique_per_owner(world):
    error = assert_error(world.client("owner").post("/api/v1/portfolios/", {"name": "Main"}, format="json"), 400)
    assert "non_field_errors" in error["fields"]
    assert "already exists" in error["message"]
    # Another user may use the same name.
    assert world.client("other").post("/api/v1/portfolios/", {"name": "Main"}, format="json").status_code == 201


def test_malformed_json_is_a_400_with_the_error_body(world):
    response = world.client("owner").generic(
        "POST", "/api/v1/portfolios/", b'{"name": ', content_type="application/json"
    )
    assert assert_error(response, 400)["code"] == "parse_error"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/assets/NOPEUSDT/",
        "/api/v1/assets/NOPEUSDT/candles/",
        "/api/v1/assets/NOPEUSDT/forecasts/latest/",
        "/api/v1/portfolios/999999/",
        "/api/v1/portfolios/999999/transactions/",
        "/api/v1/training-runs/999999/",
        "/api/v1/portfolios/abc/",
        "/api/v1/nothing-here/",
        "/api/v1/assets",
    ],
)
def test_unknown_objects_and_paths_are_404_with_the_error_body(world, path):
    error = assert_error(world.client("owner").get(path), 404)
    assert error["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["", "candles/", "forecasts/", "forecasts/latest/", "model-versions/", "training-runs/"]
)
def test_an_unknown_symbol_is_named_in_the_404(world, path):
    error = assert_error(world.client("owner").get(f"/api/v1/assets/dogeusdt/{path}"), 404)
    assert error["message"] == "No asset with symbol DOGEUSDT; /api/v1/assets/ lists the tracked ones."


def test_a_path_without_its_slash_says_which_one_exists(world):
    assert "did you mean /api/v1/assets/ ?" in assert_error(world.client("owner").get("/api/v1/assets"), 404)["message"]


def test_method_not_allowed_has_the_error_body(world):
    error = assert_error(world.client("owner").delete("/api/v1/assets/BTCUSDT/"), 405)
    assert error["code"] == "method_not_allowed"


@pytest.mark.parametrize("query", [{"start": "yesterday"}, {"end": "2022-13-01T00:00:00Z"}])
def test_a_bad_iso_time_filter_is_a_400(world, query):
    field = next(iter(query))
    for path in ("/api/v1/assets/BTCUSDT/candles/", "/api/v1/assets/BTCUSDT/forecasts/", tx_url(world)):
        assert_error(world.client("owner").get(path, query), 400, field=field)


def test_time_filters_take_any_offset_python_takes(world):
    """Found by the fuzzer: an offset beyond PostgreSQL's ±15:59 was a 500; the filter converts to UTC first."""
    client = world.client("owner")
    for path in ("/api/v1/assets/BTCUSDT/candles/", "/api/v1/assets/BTCUSDT/forecasts/", tx_url(world)):
        assert client.get(path, {"start": "0067-07-24T22:36:35+23:39"}).status_code == 200
        assert client.get(path, {"end": "2022-06-30T23:00:00-23:59"}).status_code == 200
        # A time that has no UTC equivalent in the calendar is a 400, not a crash.
        assert_error(client.get(path, {"start": "0001-01-01T00:00:00+05:00"}), 400, field="start")
    page = client.get("/api/v1/assets/BTCUSDT/candles/", {"start": "2022-07-01T22:00:00+23:00"}).json()
    assert [c["open_time"] for c in page["results"]] == ["2022-06-30T23:00:00.000000Z"]


def test_latest_forecast_of_an_asset_without_one_is_a_404(world):
    world.btc.forecasts.all().delete()
    error = assert_error(world.client("owner").get("/api/v1/assets/BTCUSDT/forecasts/latest/"), 404)
    assert error["message"] == "BTCUSDT has no forecast yet."


# --- representation -------------------------------------------------------------------------------


def test_decimals_are_json_strings_and_times_iso_utc(world):
    client = world.client("owner")
    tx = client.get(f"{tx_url(world)}{world.buy.id}/").json()
    assert tx == {
        "id": world.buy.id,
        "symbol": "BTCUSDT",
        "kind": "buy",
        "quantity": "1",
        "unit_price": "100",
        "fee": "1",
        "executed_at": "2022-06-01T12:00:00.000000Z",
        "note": "",
        "created_at": tx["created_at"],
        "updated_at": tx["updated_at"],
    }
    candle = client.get("/api/v1/assets/BTCUSDT/candles/", {"limit": 1}).json()["results"][0]
    assert candle == {
        "open_time": "2022-05-22T00:00:00.000000Z",
        "close_time": "2022-05-22T00:59:59.999000Z",
        "open": "100",
        "high": "101",
        "low": "99",
        "close": "100",
        "volume": "1.5",
    }
    # Every time in every answer, computed or stored, is ISO 8601 in UTC with a Z.
    paths = [
        "/api/v1/assets/",
        "/api/v1/assets/BTCUSDT/forecasts/",
        "/api/v1/assets/BTCUSDT/forecasts/latest/",
        "/api/v1/model-versions/",
        "/api/v1/training-runs/",
        "/api/v1/tokens/",
        tx_url(world),
        f"/api/v1/portfolios/{world.portfolio.id}/holdings/",
        f"/api/v1/portfolios/{world.portfolio.id}/performance/",
        f"/api/v1/portfolios/{world.portfolio.id}/forecast/",
    ]
    times = []
    for path in paths:
        body = client.get(path).json()
        times += [v for k, v in _leaves(body) if _is_time_key(k) and v is not None]
        for key, value in _leaves(body):
            # Prices and amounts are never floats; only levels, durations and model metrics are.
            assert (
                not isinstance(value, float)
                or key.rsplit(".", 1)[-1] in FLOAT_KEYS
                or key.split(".")[-2:-1] in (["metrics"], ["baseline_metrics"], ["naive"])
            ), (path, key)
    assert len(times) > 30
    assert all(isinstance(t, str) and ISO_UTC.match(t) for t in times), [t for t in times if not ISO_UTC.match(t)]


FLOAT_KEYS = {"quantiles", "age_seconds", "duration_seconds", "train_seconds"}


def _leaves(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{key}.{k}" if key else k)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, key)
    else:
        yield key, value


def _is_time_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last.endswith(("_at", "_time", "as_of")) or last in ("t", "start", "data_start", "data_end")


def test_latest_forecast_is_the_champions_with_steps_and_the_pages_staleness(world):
    body = world.client("owner").get("/api/v1/assets/BTCUSDT/forecasts/latest/").json()
    assert body["symbol"] == "BTCUSDT"
    assert (body["kind"], body["source"], body["model_version"]) == ("model", "v2", 2)
    assert body["origin_time"] == "2022-06-30T23:00:00.000000Z"
    assert body["quantiles"] == [0.1, 0.5, 0.9]
    assert body["steps"][0] == {
        "target_time": "2022-07-01T00:00:00.000000Z",
        "values": ["120", "130", "140.5"],
    }
    assert len(body["steps"]) == 3
    assert (body["stale"], body["model_too_old"], body["candles_behind"]) == (False, False, 0)
    assert ISO_UTC.match(body["made_at"])


def test_latest_forecast_goes_stale_when_candles_move_on(world):
    make_candles(world.btc, 4, newest=NEWEST + 4 * HOUR)  # hours 1..4 after the forecast's origin
    Candle.objects.filter(asset=world.btc, open_time=NEWEST).delete()  # not in the way of the 4 new ones
    body = world.client("owner").get("/api/v1/assets/BTCUSDT/forecasts/latest/").json()
    assert (body["stale"], body["model_too_old"], body["candles_behind"]) == (True, False, 4)


def test_latest_forecast_follows_every_change_it_depends_on(world, no_broker):
    """The answer is cached; each thing it depends on changes it at once."""
    client, url = world.client("owner"), "/api/v1/assets/BTCUSDT/forecasts/latest/"

    def latest():
        body = client.get(url).json()
        return body["origin_time"][:16], body["source"], body["candles_behind"]

    assert latest() == ("2022-06-30T23:00", "v2", 0)
    assert latest() == ("2022-06-30T23:00", "v2", 0)  # unchanged: the same answer again
    make_candles(world.btc, 1, newest=NEWEST + HOUR)
    assert latest() == ("2022-06-30T23:00", "v2", 1)  # a new candle
    make_forecast(world.btc, NEWEST + HOUR, source="baseline")
    assert latest() == ("2022-07-01T00:00", "baseline", 0)  # a newer origin
    make_forecast(world.btc, NEWEST + HOUR, source="v2", version=world.v2)
    assert latest() == ("2022-07-01T00:00", "v2", 0)  # the champion's, at the same origin
    assert world.client("staff").post("/api/v1/assets/BTCUSDT/rollback/").status_code == 200
    make_forecast(world.btc, NEWEST + HOUR, source="v1", version=world.v1)
    assert latest() == ("2022-07-01T00:00", "v1", 0)  # the champion changed
    world.btc.forecasts.filter(source="v1").delete()
    assert latest()[1] == "v2"  # the served one deleted: the one made last
    world.btc.forecasts.all().delete()
    assert_error(client.get(url), 404, message="BTCUSDT has no forecast yet.")


def test_latest_forecast_without_a_champion_is_the_baseline(world):
    world.v2.status = "retired"
    world.v2.save()
    world.btc.forecasts.filter(source="v2").update(origin_time=NEWEST - HOUR)
    body = world.client("owner").get("/api/v1/assets/BTCUSDT/forecasts/latest/").json()
    assert (body["kind"], body["source"], body["model_version"]) == ("baseline", "baseline", None)


def test_holdings_and_performance_use_the_portfolio_selectors(world):
    from portfolio import selectors

    client = world.client("owner")
    body = client.get(f"/api/v1/portfolios/{world.portfolio.id}/holdings/").json()
    summary = selectors.portfolio_summary(portfolio=world.portfolio)
    assert body["value"] == f"{summary.value.normalize():f}"
    [btc] = body["holdings"]
    assert btc["symbol"] == "BTCUSDT"
    assert btc["quantity"] == "0.75"
    assert btc["price"] == f"{100 + 24 * 40 - 1}"  # the newest close
    assert btc["allocation_pct"] == "100"
    perf = client.get(f"/api/v1/portfolios/{world.portfolio.id}/performance/").json()
    assert body["as_of"] == btc["price_time"] == "2022-06-30T23:00:00Z"  # the newest candle
    assert perf["as_of"].startswith("2022-06-30T23:")
    assert set(perf["returns"]) >= {"24h", "7d", "all"}
    assert perf["value_history"][-1]["value"] == body["value"]
    fc = client.get(f"/api/v1/portfolios/{world.portfolio.id}/forecast/").json()
    assert [p["t"] for p in fc["points"]] == ["2022-07-01T00:00:00Z", "2022-07-01T01:00:00Z", "2022-07-01T02:00:00Z"]
    assert fc["points"][0]["median"] == "97.5"  # 0.75 x 130


def test_the_portfolio_forecast_does_not_compute_the_value_history(world, monkeypatch):
    """Found by the fuzzer: one transaction dated in year 1 made the performance and forecast
    answers take 10-15 s (value over time is computed per day). Such dates are refused now (see
    above), and the forecast no longer computes the value history it does not show."""
    from portfolio import selectors

    def forbidden(*args, **kwargs):
        raise AssertionError("the forecast computed the value history")

    monkeypatch.setattr(selectors, "candles_daily_close", forbidden)
    monkeypatch.setattr(selectors, "value_history_steps", forbidden)
    body = world.client("owner").get(f"/api/v1/portfolios/{world.portfolio.id}/forecast/").json()
    assert len(body["points"]) == 3


def test_huge_holdings_are_answered_not_crashed(world):
    """A value with more whole digits than a stored column (quantity x price) is answered as it was
    computed; writing it to 8 places needs more than the default 28 significant digits."""
    from portfolio import selectors

    Transaction.objects.create(
        portfolio=world.portfolio,
        asset=world.btc,
        kind="buy",
        quantity=Decimal("9999999999999999999.99999999"),
        unit_price=Decimal("1"),
        executed_at=T0,
    )
    portfolio_state_rebuild(portfolio=world.portfolio)
    response = world.client("owner").get(f"/api/v1/portfolios/{world.portfolio.id}/holdings/")
    assert response.status_code == 200
    value = selectors.portfolio_summary(portfolio=world.portfolio).value
    assert value > Decimal("1e22")
    assert response.json()["holdings"][0]["value"] == f"{value.normalize():f}"


# --- pagination ------------------------------------------------------------------------------------


def test_lists_are_paged_by_default_and_a_large_limit_is_capped(world):
    Transaction.objects.bulk_create(
        [
            Transaction(
                portfolio=world.portfolio,
                asset=world.eth,
                kind="buy",
                quantity=1,
                unit_price=1,
                executed_at=T0 + timedelta(minutes=i),
            )
            for i in range(510)
        ]
    )
    client = world.client("owner")
    page = client.get(tx_url(world)).json()
    assert (page["count"], len(page["results"])) == (512, 50)
    assert "limit=50" in page["next"] and page["previous"] is None
    page = client.get(tx_url(world), {"limit": 100000}).json()
    assert len(page["results"]) == 500
    assert "limit=500" in page["next"]
    page = client.get(tx_url(world), {"limit": 500, "offset": 500}).json()
    assert len(page["results"]) == 12 and page["next"] is None


def test_candle_pages_hold_at_most_1000(world):
    client = world.client("owner")
    page = client.get("/api/v1/assets/BTCUSDT/candles/").json()
    assert (page["count"], len(page["results"])) == (960, 500)
    make_candles(world.btc, 100, newest=NEWEST + 100 * HOUR)
    page = client.get("/api/v1/assets/BTCUSDT/candles/", {"limit": 5000}).json()
    assert (page["count"], len(page["results"])) == (1060, 1000)
    assert "limit=1000" in page["next"]


@pytest.mark.parametrize("query", [{"limit": "abc"}, {"limit": "-5"}, {"offset": "x"}])
def test_a_bad_limit_falls_back_to_the_default(world, query):
    assert len(world.client("owner").get(tx_url(world), query).json()["results"]) == 2


# --- filtering and ordering ----------------------------------------------------------------------


def test_transactions_filter_and_order(world):
    client = world.client("owner")
    client.post(tx_url(world), {**TX, "symbol": "ethusdt", "executed_at": "2022-06-10T00:00:00Z"}, format="json")

    def ids(**query):
        return [
            (t["symbol"], t["kind"], t["executed_at"][:10]) for t in client.get(tx_url(world), query).json()["results"]
        ]

    assert ids() == [
        ("ETHUSDT", "buy", "2022-06-10"),
        ("BTCUSDT", "sell", "2022-06-02"),
        ("BTCUSDT", "buy", "2022-06-01"),
    ]
    assert ids(ordering="executed_at") == list(reversed(ids()))
    assert ids(symbol="btcusdt") == [("BTCUSDT", "sell", "2022-06-02"), ("BTCUSDT", "buy", "2022-06-01")]
    assert ids(kind="sell") == [("BTCUSDT", "sell", "2022-06-02")]
    assert ids(start="2022-06-02T00:00:00Z", end="2022-06-09T00:00:00Z") == [("BTCUSDT", "sell", "2022-06-02")]
    assert ids(ordering="not_a_field") == ids()  # an unknown ordering is ignored
    assert_error(client.get(tx_url(world), {"kind": "gift"}), 400, field="kind")


def test_candles_filter_by_time_and_order(world):
    client = world.client("owner")
    page = client.get("/api/v1/assets/BTCUSDT/candles/", {"start": "2022-06-30T20:00:00Z"}).json()
    assert [c["open_time"][11:13] for c in page["results"]] == ["20", "21", "22", "23"]
    page = client.get(
        "/api/v1/assets/BTCUSDT/candles/",
        {"start": "2022-06-30T20:00:00Z", "end": "2022-06-30T21:00:00Z", "ordering": "-open_time"},
    ).json()
    assert [c["open_time"][11:13] for c in page["results"]] == ["21", "20"]
    # Offsets in the time filter are understood; the answer is in UTC.
    page = client.get("/api/v1/assets/BTCUSDT/candles/", {"start": "2022-07-01T01:00:00+03:00"}).json()
    assert [c["open_time"] for c in page["results"]] == ["2022-06-30T22:00:00.000000Z", "2022-06-30T23:00:00.000000Z"]


def test_forecasts_filter_by_kind(world):
    body = world.client("owner").get("/api/v1/assets/BTCUSDT/forecasts/", {"kind": "baseline"}).json()
    assert [f["source"] for f in body["results"]] == ["baseline"]


# --- CSV import -----------------------------------------------------------------------------------

HEADER = "executed_at,kind,symbol,quantity,unit_price,fee,note\n"


def import_csv(client, w, text: str, *, raw: bool = False):
    url = f"/api/v1/portfolios/{w.portfolio.id}/import-csv/"
    if raw:
        return client.generic("POST", url, text.encode(), content_type="text/csv")
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(url, {"file": SimpleUploadedFile("t.csv", text.encode(), "text/csv")}, format="multipart")


def test_csv_import_is_all_or_nothing_with_line_errors(world):
    text = HEADER + (
        "2022-06-10T10:00:00Z,buy,ETHUSDT,2,50,0,ok\n"
        "2022-06-11T10:00:00Z,buy,DOGEUSDT,2,50,0,unknown\n"
        "2022-06-12T10:00:00Z,buy,ETHUSDT,-1,50,0,negative\n"
        "2022-06-13T10:00:00Z,sell,ETHUSDT,9,50,0,oversell\n"
        "1999-06-13T10:00:00Z,buy,ETHUSDT,9,50,0,too early\n"
    )
    before = Transaction.objects.count()
    error = assert_error(import_csv(world.client("owner"), world, text), 400, field="lines")
    assert error["message"] == "3 bad line(s); nothing was imported."
    assert error["fields"]["lines"] == [
        "line 3: DOGEUSDT is not tracked; track it first (Assets) and import again",
        "line 4: quantity must be above zero",
        "line 6: executed_at cannot be before 2009-01-03 (Bitcoin's first block)",
    ]
    assert Transaction.objects.count() == before


def test_csv_import_oversell_names_the_line(world):
    text = HEADER + "2022-06-10T10:00:00Z,buy,ETHUSDT,2,50,0,\n2022-06-13T10:00:00Z,sell,ETHUSDT,9,50,0,\n"
    error = assert_error(import_csv(world.client("owner"), world, text, raw=True), 400, field="lines")
    [line] = error["fields"]["lines"]
    assert line.startswith("line 3: not enough")
    assert Transaction.objects.filter(asset=world.eth).count() == 0


@pytest.mark.parametrize("raw", [False, True], ids=["multipart", "text-csv"])
def test_csv_import_creates_rows_and_reports_duplicates(world, raw):
    text = HEADER + "2022-06-10T10:00:00Z,buy,ETHUSDT,2,50,0,first\n2022-06-11T10:00:00Z,sell,ETHUSDT,1,60,0.5,\n"
    client = world.client("owner")
    response = import_csv(client, world, text, raw=raw)
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 2, "duplicates": []}
    again = import_csv(client, world, text + "2022-06-12T10:00:00Z,buy,BTCUSDT,0.1,100,0,\n", raw=raw)
    assert again.json() == {"created": 1, "duplicates": [2, 3]}
    assert Transaction.objects.filter(portfolio=world.portfolio).count() == 5


def test_csv_import_needs_a_file_and_readable_text(world):
    client = world.client("owner")
    url = f"/api/v1/portfolios/{world.portfolio.id}/import-csv/"
    assert_error(client.post(url, {}, format="multipart"), 400, field="file")
    assert_error(client.generic("POST", url, b"\xff\xfe\x00bad", content_type="text/csv"), 400, field="file")
    assert_error(client.post(url, {"x": 1}, format="json"), 415)
    huge = HEADER.replace("note", "n" * 200_000)  # a header field over the csv module's limit
    assert_error(import_csv(client, world, huge, raw=True), 400, field="lines")


def test_csv_import_refuses_a_file_over_5_mb(world):
    text = HEADER + "2022-06-10T10:00:00Z,buy,ETHUSDT,2,50,0,x\n" * 130_000
    assert len(text) > 5 * 1024 * 1024
    assert_error(import_csv(world.client("owner"), world, text, raw=True), 413)
    assert Transaction.objects.filter(asset=world.eth).count() == 0


# --- staff actions ---------------------------------------------------------------------------------


def test_retrain_answers_202_with_the_runs_url(world, no_broker, django_capture_on_commit_callbacks):
    staff = world.client("staff")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post("/api/v1/assets/BTCUSDT/retrain/")
    assert response.status_code == 202
    run = TrainingRun.objects.get(asset=world.btc, status="queued")
    assert response["Location"] == f"http://testserver/api/v1/training-runs/{run.id}/"
    body = response.json()
    assert body["url"] == response["Location"]
    assert (body["id"], body["status"], body["symbol"], body["triggered_by"]) == (
        run.id,
        "queued",
        "BTCUSDT",
        "api:staff",
    )
    assert no_broker == [("train", (run.id,))]
    assert staff.get(response["Location"]).json()["status"] == "queued"
    # Asking again while it is queued returns the same run and sends nothing new.
    with django_capture_on_commit_callbacks(execute=True):
        again = staff.post("/api/v1/assets/BTCUSDT/retrain/")
    assert (again.status_code, again.json()["id"]) == (202, run.id)
    assert len(no_broker) == 1


def test_rollback_restores_the_previous_champion_then_conflicts(world, no_broker):
    staff = world.client("staff")
    assert staff.post("/api/v1/assets/BTCUSDT/rollback/").json() == {"symbol": "BTCUSDT", "champion": 1}
    # Nothing earlier: the API never leaves the asset to the baseline band unless told to.
    refused = assert_error(staff.post("/api/v1/assets/BTCUSDT/rollback/"), 409)
    assert refused["message"] == (
        "BTCUSDT v1 has no earlier version to roll back to: rolling it back would leave the statistical "
        'baseline band serving. Send {"to_baseline": true} to roll back anyway.'
    )
    assert ModelVersion.objects.get(asset=world.btc, version=1).status == "champion"
    bad = assert_error(staff.post("/api/v1/assets/BTCUSDT/rollback/", {"to_baseline": "yes"}, format="json"), 400)
    assert bad["fields"] == {"to_baseline": ["Must be a boolean."]}
    answer = staff.post("/api/v1/assets/BTCUSDT/rollback/", {"to_baseline": True}, format="json")
    assert answer.json() == {"symbol": "BTCUSDT", "champion": None}
    error = assert_error(staff.post("/api/v1/assets/BTCUSDT/rollback/"), 409)
    assert error["message"] == "BTCUSDT has no champion to roll back."


def test_promote_makes_a_version_champion(world, no_broker):
    body = world.client("staff").post(f"/api/v1/model-versions/{world.v1.id}/promote/").json()
    assert (body["version"], body["status"]) == (1, "champion")
    world.v2.refresh_from_db()
    assert world.v2.status == "retired"
    world.v2.artifact_broken = "checksum mismatch"
    world.v2.save()
    error = assert_error(world.client("staff").post(f"/api/v1/model-versions/{world.v2.id}/promote/"), 409)
    assert "broken artifact" in error["message"]


def test_training_runs_show_progress(world):
    TrainingRun.objects.create(
        asset=world.btc, status="running", triggered_by="api:staff", epoch=3, max_epochs=20, started_at=timezone.now()
    )
    runs = world.client("owner").get("/api/v1/assets/BTCUSDT/training-runs/", {"status": "running"}).json()["results"]
    assert [(r["status"], r["epoch"], r["max_epochs"], r["model_version"]) for r in runs] == [("running", 3, 20, None)]
    done = world.client("owner").get(f"/api/v1/training-runs/{world.run.id}/").json()
    assert (done["model_version"], done["duration_seconds"]) == (2, 3600.0)


def test_model_versions_carry_metrics_and_baselines(world):
    versions = world.client("owner").get("/api/v1/assets/BTCUSDT/model-versions/").json()["results"]
    assert [(v["version"], v["status"]) for v in versions] == [(2, "champion"), (1, "retired")]
    assert versions[0]["metrics"] == {"mae": 1.5, "coverage": 0.8}
    assert versions[0]["baseline_metrics"] == {"naive": {"mae": 2.0}}
