from rest_framework.pagination import LimitOffsetPagination


class _Capped(LimitOffsetPagination):
    """A `limit` above the maximum is capped to it (not refused), as the schema says."""

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.limit_query_param:
                p["description"] = (
                    f"Results per page: {self.default_limit} by default, at most {self.max_limit} "
                    f"(a larger limit is capped)."
                )
        return params


class DefaultPagination(_Capped):
    default_limit = 50
    max_limit = 500


class CandlePagination(_Capped):
    default_limit = 500
    max_limit = 1000
