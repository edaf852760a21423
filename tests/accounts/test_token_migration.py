"""API tokens moved from portfolio to accounts: the rows created before the move still authenticate."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.services import hash_key

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("portfolio", "0002_api_token")]  # also unapplies accounts.0001, which depends on 0003
AFTER = [("accounts", "0001_initial")]


def test_tokens_made_before_the_move_survive_it():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    user = old_apps.get_model("auth", "User").objects.create(username="scripter")
    old_apps.get_model("portfolio", "ApiToken").objects.create(
        user_id=user.id, name="laptop", key_hash=hash_key("mur_before"), prefix="mur_before"
    )
    tables = connection.introspection.table_names()
    assert "portfolio_apitoken" in tables and "accounts_apitoken" not in tables

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new_apps = executor.loader.project_state(AFTER).apps
    token = new_apps.get_model("accounts", "ApiToken").objects.get()
    assert (token.name, token.user_id, token.key_hash) == ("laptop", user.id, hash_key("mur_before"))
    tables = connection.introspection.table_names()
    assert "accounts_apitoken" in tables and "portfolio_apitoken" not in tables

    # Back to the latest state for the tests that follow, and the token still signs in.
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    from accounts.selectors import token_by_key

    assert token_by_key(key="mur_before").user.username == "scripter"
