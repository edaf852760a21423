from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.expressions import Col
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portfolio.models import ApiToken

KEY_PREFIX = "mur_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_create(*, user, name: str, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token and its key. The key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100], key_hash=hash_key(key), prefix=key[:12],
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    return token, key


def token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(revoked_at=timezone.now())


def _token_lookup_sql() -> tuple[str, list, list, list, type]:
    """One SELECT of a token and its user, and the converters of the columns that have any, as the
    ORM would apply them (datetimes and booleans on SQLite, say)."""
    user_model = get_user_model()
    token_fields, user_fields = ApiToken._meta.concrete_fields, user_model._meta.concrete_fields
    q = connection.ops.quote_name
    columns = [f"t.{q(f.column)}" for f in token_fields] + [f"u.{q(f.column)}" for f in user_fields]
    sql = (f"SELECT {', '.join(columns)} FROM {q(ApiToken._meta.db_table)} t "
           f"JOIN {q(user_model._meta.db_table)} u ON u.{q(user_model._meta.pk.column)} = "
           f"t.{q(ApiToken._meta.get_field('user').column)} "
           f"WHERE t.{q(ApiToken._meta.get_field('key_hash').column)} = %s")
    converters = []
    for i, f in enumerate([*token_fields, *user_fields]):
        col = Col("t", f)
        if funcs := [*connection.ops.get_db_converters(col), *f.get_db_converters(connection)]:
            converters.append((i, funcs, col))
    return sql, converters, [f.attname for f in token_fields], [f.attname for f in user_fields], user_model


_lookup_by_vendor: dict[str, tuple] = {}


def token_by_key(key: str) -> ApiToken | None:
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
    token = ApiToken.from_db(connection.alias, token_names, values[:len(token_names)])
    token.user = user_model.from_db(connection.alias, user_names, values[len(token_names):])
    return token


class HashedTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` (or `Bearer <key>`), looked up by its SHA-256."""

    keywords = ("token", "bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Token <key>'.")
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token contains invalid characters.") from None
        token = token_by_key(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked.")
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This token has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is disabled.")
        # At most one write a minute per token: last use is for people, not an audit log.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            ApiToken.objects.filter(id=token.id).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return 'Token realm="api"'


class HashedTokenScheme(OpenApiAuthenticationExtension):
    target_class = "mur_site.api.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>`; create keys on the API tokens page or at /api/v1/tokens/."}
