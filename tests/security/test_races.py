"""Races an attacker or a double click can start: the same CSV imported twice at once (through
the service, the page and the API) and one add-transaction form submitted twice at once. Each
must store every row once. On PostgreSQL, where the writers really run in parallel."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from forecasting.models import Asset
from portfolio.models import Transaction
from portfolio.services import portfolio_create
from portfolio.transactions_csv import CSV_COLUMNS, transactions_import_csv
from tests.reliability import record
from tests.support.pages import add_transaction_form

HEADER = ",".join(CSV_COLUMNS)


@pytest.mark.django_db(transaction=True)
def test_the_same_file_imported_twice_at_once_is_stored_once(on_postgres, monkeypatch):
    """A double-click or a client retry: both imports read the file and check their lines at the
    same time; the second must still see the first's rows as duplicates."""
    import threading

    from django.contrib.auth import get_user_model
    from django.db import connection

    from portfolio import transactions_csv

    owner = get_user_model().objects.create_user(username="carol", password="x-long-password-1")
    portfolio = portfolio_create(owner=owner, name="Race")
    Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT")
    text = f"{HEADER}\n" + "".join(f"2022-03-0{d}T12:00:00Z,buy,BTCUSDT,1,100,0,\n" for d in range(1, 6))
    barrier, outcomes = threading.Barrier(2, timeout=30), []
    real_validate = transactions_csv._validate

    def validate_together(*args, **kwargs):
        checked = real_validate(*args, **kwargs)
        barrier.wait()  # both have checked every line before either writes
        return checked

    monkeypatch.setattr(transactions_csv, "_validate", validate_together)

    def run():
        try:
            report = transactions_import_csv(portfolio=portfolio, text=text)
            outcomes.append((report.created, len(report.duplicates)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [(0, 5), (5, 0)]
    assert Transaction.objects.filter(portfolio=portfolio).count() == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("via", ["page", "api"])
def test_double_submitted_imports_store_each_row_once(on_postgres, via):
    """Many pairs of simultaneous imports of one file, as a double click or a client retry sends
    them, through the page and through the API: every row is stored once."""
    import threading

    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection
    from django.test import Client
    from rest_framework.test import APIClient

    owner = get_user_model().objects.create_user(username="gina", password="x-long-password-1")
    Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT")
    pairs, rows = 10, 3
    barrier, codes = threading.Barrier(2, timeout=30), []

    def submit(portfolio, text):
        barrier.wait()
        try:
            if via == "page":
                client = Client()
                client.force_login(owner)
                upload = SimpleUploadedFile("t.csv", text.encode(), "text/csv")
                codes.append(client.post(f"/portfolios/{portfolio.id}/import/", {"file": upload}).status_code)
            else:
                client = APIClient()
                client.force_authenticate(owner)
                codes.append(
                    client.generic(
                        "POST", f"/api/v1/portfolios/{portfolio.id}/import-csv/", text, content_type="text/csv"
                    ).status_code
                )
        finally:
            connection.close()

    portfolios = []
    for n in range(pairs):
        portfolio = portfolio_create(owner=owner, name=f"Pair {n}")
        portfolios.append(portfolio)
        text = f"{HEADER}\n" + "".join(f"2022-03-0{d + 1}T12:00:00Z,buy,BTCUSDT,{n + 1},100,0,\n" for d in range(rows))
        threads = [threading.Thread(target=submit, args=(portfolio, text)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes == [302 if via == "page" else 201] * (2 * pairs)
    assert [Transaction.objects.filter(portfolio=p).count() for p in portfolios] == [rows] * pairs

    record(
        "security", f"the same CSV imported twice at once through the {via}", duplicated=0, pairs=pairs, rows_each=rows
    )


@pytest.mark.django_db(transaction=True)
def test_two_submissions_of_one_form_at_once_add_one_transaction(on_postgres):
    import threading

    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user(username="dora", password="a-long-passphrase-1")
    folio = portfolio_create(owner=user, name="Clicks")
    Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", interval="1h")
    clients = [Client(), Client()]
    for c in clients:
        c.force_login(user)
    data = add_transaction_form(clients[0], folio)
    url = reverse("portfolio:transaction-add", args=[folio.pk])
    barrier, codes = threading.Barrier(2, timeout=30), []

    def submit(client):
        barrier.wait()
        try:
            codes.append(client.post(url, data).status_code)
        finally:
            connection.close()

    for _ in range(20):  # many pairs: a race shows itself in some of them
        threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        data = add_transaction_form(clients[0], folio)
    assert codes == [302] * 40
    assert folio.transactions.count() == 20

    record("security", "one add-transaction form submitted twice at once", duplicated=0, pairs=20)
