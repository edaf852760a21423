from __future__ import annotations

from django.db import transaction
from django.http import Http404
from rest_framework.permissions import SAFE_METHODS

from .exceptions import not_found


class WritesInTransaction:
    """API views: a request that may write runs in one transaction, as ATOMIC_REQUESTS would run it;
    a read (GET, HEAD, OPTIONS) runs without one.

    Under PostgreSQL's READ COMMITTED every statement reads its own snapshot anyway, so the request
    transaction gave reads nothing but BEGIN and COMMIT: two round trips that were a third of the
    cheapest authenticated request's time. Errors still roll a write back: DRF's exception handling
    marks the innermost atomic block for rollback, and this block is that one.
    """

    @classmethod
    def as_view(cls, *args, **kwargs):
        return transaction.non_atomic_requests(super().as_view(*args, **kwargs))

    def dispatch(self, request, *args, **kwargs):
        # Inside a caller's transaction (a test's, say) a read gets a savepoint of its own, so that
        # DRF marking a failed request for rollback dooms that savepoint and not the caller's block.
        if request.method in SAFE_METHODS and not transaction.get_connection().in_atomic_block:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)


class NamedObjects:
    """Viewsets: what one of their objects is called, for their 404s ("No portfolio with id 12.",
    where DRF would say "Not found.") and for their tag and summaries in the API docs
    (core.api.schema). The serializer's model names it unless `object_name` says otherwise."""

    object_name: str = ""

    @classmethod
    def get_object_name(cls) -> str:
        return cls.object_name or str(cls.serializer_class.Meta.model._meta.verbose_name)

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            kwarg = self.lookup_url_kwarg or self.lookup_field
            by = "id" if self.lookup_field == "pk" else self.lookup_field
            raise not_found(self.get_object_name(), by, self.kwargs[kwarg]) from None
