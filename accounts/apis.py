"""Your API tokens under /api/v1/tokens/, and /api/v1/ping/."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.mixins import NamedObjects, WritesInTransaction
from core.api.serializers import ModelSerializer

from .forms import MAX_EXPIRY_DAYS
from .models import ApiToken
from .services import token_create, token_revoke


class PingApi(WritesInTransaction, APIView):
    """Who you are, as the API sees you: the cheapest authenticated request (checks a token)."""

    @extend_schema(
        tags=["Tokens"],
        summary="Check a token: who the API takes you for",
        responses=inline_serializer("Ping", {"ok": serializers.BooleanField(), "user": serializers.CharField()}),
    )
    def get(self, request):
        return Response({"ok": True, "user": request.user.get_username()})


class ApiTokenSerializer(ModelSerializer):
    expires_in_days = serializers.IntegerField(
        write_only=True, required=False, allow_null=True, min_value=1, max_value=MAX_EXPIRY_DAYS
    )
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "active",
            "expires_in_days",
        ]
        read_only_fields = ["id", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]

    def get_active(self, obj) -> bool:
        return obj.is_active(timezone.now())


class ApiTokenViewSet(
    WritesInTransaction,
    NamedObjects,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your API tokens. The key is in the creation response only; DELETE revokes a token."""

    serializer_class = ApiTokenSerializer
    object_name = "token"
    filterset_fields = []
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(
        summary="Create a token (its key is in this answer only)",
        examples=[
            OpenApiExample(
                "A token for a script", value={"name": "laptop script", "expires_in_days": 90}, request_only=True
            )
        ],
        responses={
            201: inline_serializer(
                "ApiTokenCreated",
                {
                    "id": serializers.IntegerField(),
                    "name": serializers.CharField(),
                    "key": serializers.CharField(),
                    "prefix": serializers.CharField(),
                    "expires_at": serializers.DateTimeField(allow_null=True),
                },
            )
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = token_create(
            user=request.user,
            name=serializer.validated_data["name"],
            expires_in_days=serializer.validated_data.get("expires_in_days"),
        )
        return Response(
            {"id": token.id, "name": token.name, "key": key, "prefix": token.prefix, "expires_at": token.expires_at},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(summary="Revoke a token")
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        token_revoke(token=instance)
