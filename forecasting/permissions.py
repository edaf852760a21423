"""Who may change what the forecasts come from: one rule for admin actions and the API alike.
Staff act through Django's model permissions, so a group can be given one action and not another."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

RETRAIN = "forecasting.add_trainingrun"  # queue a training now
CHANGE_CHAMPION = "forecasting.change_modelversion"  # promote, roll back, retire


def can_retrain(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm(RETRAIN))


def can_change_champion(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm(CHANGE_CHAMPION))


class CanRetrain(BasePermission):
    message = "Retraining needs staff status and the “Can add training run” permission."

    def has_permission(self, request, view):
        return can_retrain(request.user)


class CanChangeChampion(BasePermission):
    message = "Changing the champion needs staff status and the “Can change model version” permission."

    def has_permission(self, request, view):
        return can_change_champion(request.user)
