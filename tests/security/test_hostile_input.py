"""Hostile input in every text and number field of every form and API write: unicode, NUL and
control characters, very long strings, huge and odd numbers, SQL and HTML/JS injection. Each value
is either refused with a clear error (a form error, or a 4xx with the API's error body) and
nothing is stored, or stored exactly as given and shown escaped. Never a 5xx."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils.html import escape

from accounts.models import ApiToken
from portfolio.models import Portfolio, Transaction
from portfolio.services import portfolio_state_rebuild
from tests.reliability import record
from tests.support.world import assert_error

from .conftest import client_for

HOSTILE = {
    "emoji": "💰🚀 to the moon 🌕",
    "right-to-left": "محفظة \u202eevil\u202c",
    "combining": "Z\u0337\u0322a\u0338l\u0335g\u0336o e\u0301",
    "NUL": "a\x00b",
    "control characters": "a\x01b\x07c\x1bd\x7fe",
    "line breaks": "one\r\ntwo\nthree",
    "very long": "x" * 10_000,
    "1e400": "1e400",
    "29 nines": "99999999999999999999999999999",
    "-0": "-0",
    "-0.0": "-0.0",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "SQL drop": "'; DROP TABLE portfolio_transaction; --",
    "SQL or": "' OR 1=1 --",
    "script": "<script>window.__xss=1</script>",
    "img onerror": "<img src=x onerror=window.__xss=1>",
    "svg onload": '"><svg onload=window.__xss=1>',
    "template": "{{ request.user }}{% now 'Y' %}",
}
NUMERIC = {"quantity", "unit_price", "fee", "expires_in_days"}


def counts() -> dict[str, int]:
    return {
        "portfolios": Portfolio.objects.count(),
        "transactions": Transaction.objects.count(),
        "tokens": ApiToken.objects.count(),
        "users": get_user_model().objects.count(),
    }


def same_value(field: str, given: str, stored) -> bool:
    if field in NUMERIC:
        try:
            return Decimal(given) == Decimal(stored)
        except InvalidOperation:
            return False
    return stored == given


@dataclass
class Outcomes:
    refused: int = 0
    stored: int = 0
    requests: int = 0

    def facts(self, fields: int) -> dict:
        return {
            "values": len(HOSTILE),
            "fields": fields,
            "requests": self.requests,
            "refused": self.refused,
            "stored_exactly": self.stored,
            "status_5xx": 0,
        }


# --- pages -------------------------------------------------------------------------------------------


@dataclass
class Form:
    title: str
    path: str  # formatted with the world
    data: dict
    model: type
    shown: dict = None  # field -> pages that show its stored value
    edits: bool = False  # the form changes an existing row (else it creates one)
    role: str = "owner"

    def row(self, w, before_ids):
        if self.edits:
            return self.model.objects.get(
                id={"Portfolio": w.portfolio.id, "Transaction": w.buy.id}[self.model.__name__]
            )
        return self.model.objects.exclude(id__in=before_ids).get()


TX_FORM = {
    "symbol": "BTCUSDT",
    "kind": "buy",
    "quantity": "0.5",
    "unit_price": "110",
    "fee": "0",
    "executed_at": "2022-06-03T00:00:00",
    "note": "dip",
}
FORMS = [
    Form(
        "new portfolio",
        "/portfolios/",
        {"name": "Fresh", "description": ""},
        Portfolio,
        shown={"name": ("/portfolios/", "/portfolios/{new}/"), "description": ("/portfolios/{new}/edit/",)},
    ),
    Form(
        "portfolio edit",
        "/portfolios/{w.portfolio.id}/edit/",
        {"name": "Main", "description": "Long term"},
        Portfolio,
        edits=True,
        shown={
            "name": ("/portfolios/", "/portfolios/{w.portfolio.id}/", "/portfolios/{w.portfolio.id}/edit/"),
            "description": ("/portfolios/{w.portfolio.id}/edit/",),
        },
    ),
    Form(
        "new transaction",
        "/portfolios/{w.portfolio.id}/transactions/add/",
        TX_FORM,
        Transaction,
        shown={"note": ("/portfolios/{w.portfolio.id}/", "/portfolios/{w.portfolio.id}/transactions/{new}/edit/")},
    ),
    Form(
        "transaction edit",
        "/portfolios/{w.portfolio.id}/transactions/{w.buy.id}/edit/",
        {**TX_FORM, "quantity": "1", "unit_price": "100", "fee": "1", "executed_at": "2022-06-01T12:00:00", "note": ""},
        Transaction,
        edits=True,
        shown={"note": ("/portfolios/{w.portfolio.id}/", "/portfolios/{w.portfolio.id}/transactions/{w.buy.id}/edit/")},
    ),
    Form(
        "new API token",
        "/accounts/api-tokens/",
        {"name": "script", "expires_in_days": "30"},
        ApiToken,
        shown={"name": ("/accounts/api-tokens/",)},
    ),
]


def field_names(form: Form) -> list[str]:
    return [f for f in form.data if f not in ("kind",)] + (["kind"] if "kind" in form.data else [])


def restore(w) -> None:
    Portfolio.objects.filter(id=w.portfolio.id).update(name="Main", description="Long term")
    Transaction.objects.filter(id=w.buy.id).update(quantity=1, unit_price=100, fee=1, note="")
    portfolio_state_rebuild(portfolio=w.portfolio)


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.title)
def test_hostile_values_in_every_field_of_a_page_form(world, form):
    client = client_for(world, form.role)
    path = form.path.format(w=world)
    out = Outcomes()
    for field in field_names(form):
        for label, value in HOSTILE.items():
            before, before_ids = counts(), set(form.model.objects.values_list("id", flat=True))
            response = client.post(path, {**form.data, field: value})
            out.requests += 1
            where = f"{form.title}, {field} = {label}"
            assert response.status_code < 500, where
            # A new token's key is shown on the answer to the POST itself, not after a redirect.
            if response.status_code == 302 or "accounts/token_created.html" in [t.name for t in response.templates]:
                row = form.row(world, before_ids)
                stored = getattr(row, field)
                assert same_value(field, value, stored), (where, stored)
                grown = {k: v - before[k] for k, v in counts().items()}
                assert grown == {k: (0 if form.edits or k != key(form.model) else 1) for k in grown}, where
                for page in (form.shown or {}).get(field, ()):
                    html = client.get(page.format(w=world, new=row.id)).content.decode()
                    assert escape(value) in html, (where, page)
                    if "<" in value:
                        assert value not in html, (where, page)
                out.stored += 1
                if form.edits:
                    restore(world)
                else:
                    row.delete()
            else:
                assert response.status_code in (200, 400), where
                assert response.context["form"].errors, where
                assert counts() == before, where
                if "<" in value:
                    assert value not in response.content.decode(), where  # the error page echoes it escaped
                out.refused += 1
    record("hostile-input", f"page form: {form.title}", **out.facts(len(field_names(form))))


def key(model) -> str:
    return {Portfolio: "portfolios", Transaction: "transactions", ApiToken: "tokens"}[model]


@pytest.mark.parametrize("field", ["username", "email", "password1"])
def test_hostile_values_on_sign_up(world, field):
    out = Outcomes()
    base = {
        "username": "newcomer",
        "email": "",
        "password1": "a-long-new-passphrase",
        "password2": "a-long-new-passphrase",
    }
    for label, value in HOSTILE.items():
        before = counts()
        data = {**base, field: value}
        if field == "password1":
            data["password2"] = value
        response = Client().post("/accounts/signup/", data)
        out.requests += 1
        assert response.status_code < 500, label
        if response.status_code == 302:
            user = get_user_model().objects.get(username=data["username"])
            assert getattr(user, field) == value if field != "password1" else user.check_password(value), label
            out.stored += 1
            user.delete()
        else:
            assert response.status_code == 200 and response.context["form"].errors, label
            assert counts() == before, label
            out.refused += 1
    record("hostile-input", f"sign-up {field}", **out.facts(1))


@pytest.mark.parametrize(
    "path, fields",
    [
        ("/accounts/login/", ("username", "password")),
        ("/accounts/password/reset/", ("email",)),
        ("/admin/login/", ("username", "password")),
    ],
)
def test_hostile_values_on_sign_in_and_password_reset(world, path, fields):
    out = Outcomes()
    base = {"username": "owner", "password": "wrong", "email": "owner@example.com"}
    for field in fields:
        for label, value in HOSTILE.items():
            response = Client().post(path, {**base, field: value})
            out.requests += 1
            assert response.status_code in (200, 302, 429), (path, field, label, response.status_code)
            assert not Client().get("/portfolios/").wsgi_request.user.is_authenticated
            out.refused += 1
    record("hostile-input", f"sign-in and reset form {path}", **out.facts(len(fields)))


def test_hostile_query_parameters_and_path_segments(world):
    """Filters, paging, ranges, ordering and object ids in URLs: a page, a 4xx, never a 5xx."""
    page = client_for(world, "owner")
    api = world.client("owner")
    p, tx = world.portfolio.id, world.buy.id
    statuses: dict[int, int] = {}
    checked = 0
    for value in HOSTILE.values():
        for client, path, param in [
            (page, f"/portfolios/{p}/", "asset"),
            (page, f"/portfolios/{p}/", "kind"),
            (page, f"/portfolios/{p}/", "date_from"),
            (page, f"/portfolios/{p}/", "page"),
            (page, "/assets/BTCUSDT/", "range"),
            (page, "/assets/BTCUSDT/", "ahead"),
            (page, "/assets/BTCUSDT/prices.json", "range"),
            (page, f"/portfolios/{p}/transactions/add/", "symbol"),
            (api, "/api/v1/portfolios/", "ordering"),
            (api, "/api/v1/assets/BTCUSDT/candles/", "limit"),
            (api, "/api/v1/assets/BTCUSDT/candles/", "offset"),
            (api, "/api/v1/assets/BTCUSDT/candles/", "start"),
            (api, f"/api/v1/portfolios/{p}/transactions/", "symbol"),
            (api, f"/api/v1/portfolios/{p}/transactions/", "kind"),
            (api, f"/api/v1/portfolios/{p}/transactions/", "end"),
        ]:
            response = client.get(path, {param: value})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (200, 400), (path, param, value[:40], response.status_code)
            if response.status_code == 200 and response["Content-Type"].startswith("text/html") and "<" in value:
                assert value not in response.content.decode(), (path, param)
            checked += 1
        segment = value[:200].replace("/", "%2F").replace("?", "%3F").replace("#", "%23")
        for client, path in [
            (page, f"/assets/{segment}/"),
            (page, f"/assets/{segment}/prices.json"),
            (api, f"/api/v1/assets/{segment}/"),
            (api, f"/api/v1/portfolios/{segment}/"),
            (page, f"/portfolios/{p}/transactions/{segment}/edit/"),
            (api, f"/api/v1/portfolios/{p}/transactions/{segment}/"),
        ]:
            response = client.get(path)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code == 404, (path[:80], response.status_code)
            checked += 1
    assert page.get(f"/portfolios/{p}/transactions/{tx}/edit/").status_code == 200
    record(
        "hostile-input", "query parameters and path segments", values=len(HOSTILE), requests=checked, statuses=statuses
    )


# --- API -----------------------------------------------------------------------------------------------


@dataclass
class Write:
    title: str
    method: str
    path: str
    data: dict
    model: type
    edits: bool = False


TX_API = {
    "symbol": "BTCUSDT",
    "kind": "buy",
    "quantity": "0.5",
    "unit_price": "110",
    "fee": "0",
    "executed_at": "2022-06-03T00:00:00Z",
    "note": "dip",
}
WRITES = [
    Write("POST portfolios", "post", "/api/v1/portfolios/", {"name": "Fresh", "description": ""}, Portfolio),
    Write(
        "PATCH portfolio",
        "patch",
        "/api/v1/portfolios/{w.portfolio.id}/",
        {"name": "Main", "description": "x"},
        Portfolio,
        edits=True,
    ),
    Write("POST transactions", "post", "/api/v1/portfolios/{w.portfolio.id}/transactions/", TX_API, Transaction),
    Write(
        "PATCH transaction",
        "patch",
        "/api/v1/portfolios/{w.portfolio.id}/transactions/{w.buy.id}/",
        {"note": "", "quantity": "1", "unit_price": "100", "fee": "1"},
        Transaction,
        edits=True,
    ),
    Write("POST tokens", "post", "/api/v1/tokens/", {"name": "script", "expires_in_days": 30}, ApiToken),
]


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.title)
def test_hostile_values_in_every_field_of_an_api_write(world, write):
    client = world.client("owner")
    path = write.path.format(w=world)
    fields = [f for f in write.data if f != "kind"] + (["kind"] if "kind" in write.data else [])
    out = Outcomes()
    for field in fields:
        for label, value in HOSTILE.items():
            before = counts()
            response = getattr(client, write.method)(path, {**write.data, field: value}, format="json")
            out.requests += 1
            where = f"{write.title}, {field} = {label}"
            assert response.status_code < 500, where
            if response.status_code in (200, 201):
                row = (
                    write.model.objects.get(id=response.json()["id"])
                    if not write.edits
                    else Form("", "", {}, write.model, edits=True).row(world, set())
                )
                assert same_value(field, value, getattr(row, field)), (where, getattr(row, field))
                if field not in NUMERIC:
                    assert response.json()[field] == value, where  # answered back exactly too
                grown = {k: v - before[k] for k, v in counts().items()}
                assert grown == {k: (0 if write.edits or k != key(write.model) else 1) for k in grown}, where
                out.stored += 1
                if write.edits:
                    restore(world)
                else:
                    row.delete()
            else:
                assert_error(response, 400)
                assert counts() == before, where
                out.refused += 1
    record("hostile-input", f"API write: {write.title}", **out.facts(len(fields)))


# --- CSV ------------------------------------------------------------------------------------------------

CSV_HEADER = "executed_at,kind,symbol,quantity,unit_price,fee,note"
CSV_ROW = ["2022-06-10T10:00:00Z", "buy", "BTCUSDT", "2", "50", "0", "csv"]


def csv_text(column: int, value: str) -> str:
    row = list(CSV_ROW)
    row[column] = '"' + value.replace('"', '""') + '"'
    return CSV_HEADER + "\n" + ",".join(row) + "\n"


@pytest.mark.parametrize("via", ["page", "api"])
def test_hostile_values_in_every_csv_cell(world, via):
    page = client_for(world, "owner")
    api = world.client("owner")
    out = Outcomes()
    for column, name in enumerate(CSV_HEADER.split(",")):
        for label, value in HOSTILE.items():
            before = counts()
            text = csv_text(column, value).encode()
            where = f"CSV {via}, {name} = {label}"
            if via == "page":
                response = page.post(
                    f"/portfolios/{world.portfolio.id}/import/", {"file": SimpleUploadedFile("t.csv", text, "text/csv")}
                )
                accepted = response.status_code == 302
            else:
                response = api.generic(
                    "POST", f"/api/v1/portfolios/{world.portfolio.id}/import-csv/", text, content_type="text/csv"
                )
                accepted = response.status_code == 201
            out.requests += 1
            assert response.status_code < 500, where
            if accepted:
                tx = Transaction.objects.filter(portfolio=world.portfolio).order_by("-id").first()
                assert counts()["transactions"] == before["transactions"] + 1, where
                stored = getattr(tx, {"symbol": "asset"}.get(name, name))
                if name == "symbol":
                    stored = stored.symbol
                # Cells are read as the columns describe: trimmed, kinds in lower case, symbols in upper case.
                assert (
                    stored == value
                    or same_value(name if name in NUMERIC else "", value, stored)
                    or stored == value.strip()
                ), (where, stored)
                if name == "note" and "<" in value:
                    html = page.get(f"/portfolios/{world.portfolio.id}/").content.decode()
                    assert escape(value) in html and value not in html, where
                tx.delete()
                out.stored += 1
            else:
                if via == "page":
                    assert response.status_code == 200 and response.context["report"].errors, where
                    if "<" in value:
                        assert value not in response.content.decode(), where
                else:
                    assert assert_error(response, 400)["fields"]["lines"], where
                assert counts() == before, where
                out.refused += 1
    record("hostile-input", f"CSV cells through the {via}", **out.facts(len(CSV_ROW)))


# --- sizes -----------------------------------------------------------------------------------------------


def test_oversized_bodies_and_uploads_get_a_clear_4xx(world, settings):
    page = client_for(world, "owner")
    api = world.client("owner")
    before = counts()
    p = world.portfolio.id
    big_csv = (CSV_HEADER + "\n" + "2022-06-10T10:00:00Z,buy,BTCUSDT,2,50,0," + "n" * 400 + "\n").encode() * 13_000
    assert len(big_csv) > 5 * 1024 * 1024
    statuses = {}
    response = page.post(f"/portfolios/{p}/import/", {"file": SimpleUploadedFile("big.csv", big_csv, "text/csv")})
    assert response.status_code == 200
    assert "the limit is 5 MB" in " ".join(response.context["form"].errors["file"])
    statuses["page csv over 5 MB"] = response.status_code

    error = assert_error(
        api.generic("POST", f"/api/v1/portfolios/{p}/import-csv/", big_csv, content_type="text/csv"), 413
    )
    assert "larger than 5 MB" in error["message"]
    statuses["api csv over 5 MB"] = 413
    error = assert_error(
        api.post(
            f"/api/v1/portfolios/{p}/import-csv/",
            {"file": SimpleUploadedFile("big.csv", big_csv, "text/csv")},
            format="multipart",
        ),
        413,
    )
    statuses["api multipart csv over 5 MB"] = 413

    # Many short rows under the size limit: the row limit names itself.
    rows = "".join(f"2022-06-10T10:{i // 60 % 60:02d}:{i % 60:02d}Z,buy,BTCUSDT,{i + 1},1,0,\n" for i in range(50_001))
    error = assert_error(
        api.generic(
            "POST", f"/api/v1/portfolios/{p}/import-csv/", (CSV_HEADER + "\n" + rows).encode(), content_type="text/csv"
        ),
        400,
    )
    assert "more than 50000 rows; split the file" in " ".join(error["fields"]["lines"])
    statuses["api csv over 50000 rows"] = 400

    # Bodies over Django's 2.5 MB limit for form and JSON data.
    huge = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = page.post("/portfolios/", {"name": "big", "description": huge})
    assert response.status_code == 400
    statuses["page form over the body limit"] = 400
    error = assert_error(api.post("/api/v1/portfolios/", {"name": "big", "description": huge}, format="json"), 413)
    statuses["api json over the body limit"] = 413
    # Too many form fields.
    response = page.post("/portfolios/", {f"f{i}": "1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)})
    assert response.status_code == 400
    statuses["page form with too many fields"] = 400
    assert counts() == before
    record(
        "hostile-input",
        "oversized bodies and CSV uploads",
        requests=len(statuses),
        statuses=statuses,
        csv_bytes=len(big_csv),
    )
