"""The API against its own schema, by a real external fuzzer: the schemathesis CLI, in its own
process, sends generated valid and invalid requests for every operation to the live test server
with a valid token. No answer may be a 5xx, break the documented schema or its status codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken
from accounts.services import token_create
from portfolio import services
from portfolio import tasks as portfolio_tasks
from portfolio.models import Portfolio
from tests.factories import ExchangeConnectionFactory
from tests.fakes.binance_account import generate_account
from tests.support.processes import clean_env
from tests.support.world import build_world

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
# Bounded: the run takes one to two minutes. MUR_FUZZ_EXAMPLES / MUR_FUZZ_SEED explore further.
MAX_EXAMPLES = int(os.environ.get("MUR_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("MUR_FUZZ_SEED", "20240301"))


@pytest.fixture
def fuzz_world(transactional_db, django_user_model, monkeypatch, fake_binance):
    """The world of the other API tests, plus a staff user who owns portfolios, so every operation
    (staff-only ones included) can answer 2xx to the fuzzer's token."""
    from forecasting import tasks

    monkeypatch.setattr(tasks.training_run_task, "delay", lambda *a, **k: None)  # no broker in tests
    monkeypatch.setattr(tasks.forecast_task, "delay", lambda *a, **k: None)
    monkeypatch.setattr(portfolio_tasks.exchange_sync_task, "delay", lambda *a, **k: None)
    # The live server runs in this process: the fuzzer's pace must not be cut short by 429s.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "100000/min", "user": "100000/min"})
    w = build_world(django_user_model)
    fuzzer = django_user_model.objects.create_user(username="fuzzer", password="x", is_staff=True)
    fuzzer.user_permissions.add(*w.staff.user_permissions.all())  # an operator, as the world's staff
    spare_tokens = [token_create(user=fuzzer, name=f"spare {i}")[0].id for i in range(3)]
    own, key = token_create(user=fuzzer, name="fuzzer")
    portfolios = [services.portfolio_create(owner=fuzzer, name=name).id for name in ("One", "Two", "Three")]
    disposable = [services.portfolio_create(owner=fuzzer, name=f"Spare {i}").id for i in range(3)]
    # One ledger for the transaction operations, so a transaction id and its portfolio go together.
    ledger = services.portfolio_create(owner=fuzzer, name="Ledger")
    for portfolio_id in [*portfolios, ledger.id]:
        for asset, quantity in ((w.btc, 2), (w.eth, 5)):
            services.transaction_create(
                portfolio=Portfolio.objects.get(id=portfolio_id),
                asset=asset,
                kind="buy",
                quantity=quantity,
                unit_price=100,
                executed_at=w.buy.executed_at,
            )
    # Exchange connections: a portfolio with two (one for DELETE), and a read-only account on the
    # fake Binance whose key a POST may connect to it.
    account = generate_account(fake_binance, pairs=["BTCUSDT"], trades=5, seed=1)
    fake_binance.add_account(account)
    connected = services.portfolio_create(owner=fuzzer, name="Connected")
    kept_connection, spare_connection = (ExchangeConnectionFactory(portfolio=connected) for _ in range(2))
    return {
        "connected": connected.id,
        "connections": [kept_connection.id],
        "spare_connections": [spare_connection.id],
        "api_keys": [account.api_key],
        "api_secrets": [account.api_secret],
        "key": key,
        "symbols": ["BTCUSDT", "ETHUSDT", "btcusdt"],
        "times": ["2022-06-05T00:00:00Z", "2022-06-20T12:30:00+02:00", "2022-06-02T00:00:00.5Z"],
        "portfolios": portfolios,
        "disposable": disposable,
        "ledger": ledger.id,
        "transactions": list(ledger.transactions.values_list("id", flat=True)),
        "tokens": spare_tokens,
        "own_token": own.id,
        "versions": [w.v1.id, w.v2.id],
        "runs": [w.run.id],
        "fuzzer": fuzzer,
    }


HOOKS = """
import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    # Whatever the phase picked (links from the token list included), the fuzzer never revokes the
    # token it authenticates with: the rest of the run would be anonymous 401s that pass unnoticed.
    if (case.method.upper() == "DELETE" and case.path == "/api/v1/tokens/{{id}}/"
            and str(case.path_parameters.get("id")) == "{own}"):
        case.path_parameters["id"] = {spare}
    # Likewise the portfolios the other operations work on are never deleted (spare ones are).
    if (case.method.upper() == "DELETE" and case.path == "/api/v1/portfolios/{{id}}/"
            and str(case.path_parameters.get("id")) in {kept!r}):
        case.path_parameters["id"] = {disposable}
    # Dictionary values for this DELETE's two path parameters never reached a request in our runs
    # (every call was a 404): its first call removes the spare connection, the rest are as generated.
    if (case.method.upper() == "DELETE" and case.path == "/api/v1/portfolios/{{portfolio_pk}}/connections/{{id}}/"
            and not _spare_deleted):
        _spare_deleted.append(True)
        case.path_parameters.update(portfolio_pk={connected}, id={spare_connection})


_spare_deleted = []


@schemathesis.hook
def after_call(context, case, response):
    # What the API answered, per operation: the test checks that every operation was reached.
    if case.method.upper() != case.operation.method.upper():
        return  # an undocumented method, sent on purpose
    with open({statuses!r}, "a") as out:
        out.write(f"{{case.method.upper()}} {{case.path}} {{response.status_code}}\\n")
"""


def config_toml(world: dict, hooks: Path) -> str:
    """Known ids and symbols for the path parameters most of the time, generated ones otherwise,
    so operations reach real objects as well as 404s."""

    def values(items) -> str:
        return json.dumps([str(i) if isinstance(i, str) else i for i in items])

    def binding(key: str, dictionary: str, probability: float) -> str:
        return f'"{key}" = {{ dictionary = "{dictionary}", probability = {probability} }}'

    def operation(match: str, *bindings: str) -> str:
        return f"[[operations]]\n{match}\nparameters = {{ {', '.join(bindings)} }}"

    portfolio = "^/api/v1/portfolios/\\\\{id\\\\}/"
    transactions = "^/api/v1/portfolios/\\\\{portfolio_pk\\\\}/transactions/"
    tx_body = (binding("body.symbol", "symbols", 0.7), binding("body.executed_at", "times", 0.5))
    connections = "^/api/v1/portfolios/\\\\{portfolio_pk\\\\}/connections/"
    connection_body = (
        binding("path.portfolio_pk", "connected", 0.8),
        binding("body.api_key", "api_keys", 0.6),
        binding("body.api_secret", "api_secrets", 0.6),
    )
    lines = [
        f"[dictionaries.{name}]\nvalues = {values(world[name])}"
        for name in ("symbols", "times", "portfolios", "disposable", "transactions", "tokens", "versions", "runs")
        + ("connections", "spare_connections", "api_keys", "api_secrets")
    ] + [
        f"[dictionaries.connected]\nvalues = {values([str(world['connected'])])}",
        f"[dictionaries.ledger]\nvalues = {values([str(world['ledger'])])}",
        f"[parameters]\n{binding('path.symbol', 'symbols', 0.8)}",
        operation(
            f'include-path-regex = "{portfolio}"\nexclude-method = "DELETE"', binding("path.id", "portfolios", 0.8)
        ),
        # Deleting a portfolio takes a spare one, so the others stay for the operations after it.
        operation(
            'include-path = "/api/v1/portfolios/{id}/"\ninclude-method = "DELETE"',
            binding("path.id", "disposable", 1.0),
        ),
        operation(f'include-path-regex = "{transactions}$"', binding("path.portfolio_pk", "ledger", 0.8), *tx_body),
        operation(
            f'include-path-regex = "{transactions}\\\\{{id\\\\}}/$"',
            binding("path.portfolio_pk", "ledger", 0.8),
            binding("path.id", "transactions", 0.8),
            *tx_body,
        ),
        operation(f'include-path-regex = "{connections}$"', *connection_body),
        operation(
            f'include-path-regex = "{connections}\\\\{{id\\\\}}/"\nexclude-method = "DELETE"',
            binding("path.portfolio_pk", "connected", 0.8),
            binding("path.id", "connections", 0.8),
        ),
        operation('include-path-regex = "^/api/v1/tokens/\\\\{id\\\\}/$"', binding("path.id", "tokens", 0.8)),
        operation('include-path-regex = "^/api/v1/model-versions/\\\\{id\\\\}/"', binding("path.id", "versions", 0.8)),
        operation('include-path-regex = "^/api/v1/training-runs/\\\\{id\\\\}/$"', binding("path.id", "runs", 0.8)),
    ]
    return f'hooks = "{hooks}"\n\n' + "\n\n".join(lines) + "\n"


def test_schemathesis_finds_no_server_error_and_no_schema_break(fuzz_world, live_server, tmp_path):
    hooks = tmp_path / "fuzz_hooks.py"
    statuses = tmp_path / "statuses.txt"
    kept = {str(i) for i in [*fuzz_world["portfolios"], fuzz_world["ledger"]]}
    hooks.write_text(
        HOOKS.format(
            own=fuzz_world["own_token"],
            spare=fuzz_world["tokens"][0],
            kept=kept,
            disposable=fuzz_world["disposable"][0],
            connected=fuzz_world["connected"],
            spare_connection=fuzz_world["spare_connections"][0],
            statuses=str(statuses),
        )
    )
    config = tmp_path / "schemathesis.toml"
    config.write_text(config_toml(fuzz_world, hooks))
    report = tmp_path / "report.json"
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{live_server.url}/api/schema/",
        "--url",
        live_server.url,
        "--header",
        f"Authorization: Token {fuzz_world['key']}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--suppress-health-check",
        "too_slow,filter_too_much",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-12000:]
    # It really ran: every operation of the schema, and the token worked all along.
    summary = _summary(log)
    assert summary["operations"] >= 35, log[-6000:]
    assert ApiToken.objects.get(user=fuzz_world["fuzzer"], name="fuzzer").revoked_at is None
    answers: dict[str, Counter] = defaultdict(Counter)
    for line in statuses.read_text().splitlines():
        method, path, status = line.split()
        answers[f"{method} {path}"][int(status)] += 1
    print(log[log.find("SUMMARY") :])
    for operation, counts in sorted(answers.items()):
        print(f"{operation}: {dict(sorted(counts.items()))}")
    assert len(answers) == 40
    unreached = sorted(op for op, counts in answers.items() if not any(200 <= s < 300 for s in counts))
    assert unreached == [], unreached


def _summary(log: str) -> dict:
    import re

    found = re.search(r"API Operations:\s+Selected:\s+(\d+)/(\d+)\s+Tested:\s+(\d+)", log)
    assert found, log[-6000:]
    selected, total, tested = map(int, found.groups())
    return {"operations": tested, "selected": selected, "total": total}
