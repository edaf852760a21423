"""Reads of the accounts app: API tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.expressions import Col

from .models import ApiToken
from .services import hash_key


def token_list(*, user) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user))


def _token_lookup_sql() -> tuple[str, list, list, list, type]:
    """One SELECT of a token and its user, and the converters of the columns that have any, as the
    ORM would apply them (datetimes and booleans on SQLite, say)."""
    user_model = get_user_model()
    token_fields, user_fields = ApiToken._meta.concrete_fields, user_model._meta.concrete_fields
    q = connection.ops.quote_name
    columns = [f"t.{q(f.column)}" for f in token_fields] + [f"u.{q(f.column)}" for f in user_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {q(ApiToken._meta.db_table)} t "
        f"JOIN {q(user_model._meta.db_table)} u ON u.{q(user_model._meta.pk.column)} = "
        f"t.{q(ApiToken._meta.get_field('user').column)} "
        f"WHERE t.{q(ApiToken._meta.get_field('key_hash').column)} = %s"
    )
    converters = []
    for i, f in enumerate([*token_fields, *user_fields]):
        col = Col("t", f)
        if funcs := [*connection.ops.get_db_converters(col), *f.get_db_converters(connection)]:
            converters.append((i, funcs, col))
    return sql, converters, [f.attname for f in token_fields], [f.attname for f in user_fields], user_model


_lookup_by_vendor: dict[str, tuple] = {}


def token_by_key(*, key: str) -> ApiToken | None:
    """The token with this key, its user attached, or None.

    Every API request authenticates, and building this query with the ORM cost twice as long as
    the database takes to answer it; the SQL is made once per process, and its answer is converted
    and turned into model instances the way the ORM does.
    """
    lookup = _lookup_by_vendor.get(connection.vendor)
    if lookup is None:
        lookup = _lookup_by_vendor[connection.vendor] = _token_lookup_sql()
    sql, converters, token_names, user_names, user_model = lookup
    with connection.cursor() as cursor:
        cursor.execute(sql, [hash_key(key)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for i, funcs, col in converters:
        for convert in funcs:
            values[i] = convert(values[i], col, connection)
    token = ApiToken.from_db(connection.alias, token_names, values[: len(token_names)])
    token.user = user_model.from_db(connection.alias, user_names, values[len(token_names) :])
    return token
