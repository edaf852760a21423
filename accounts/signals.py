"""A changed password revokes the user's API tokens, whichever way it changed: the password pages,
a reset link, admin, or `manage.py changepassword`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save
from django.dispatch import receiver

from .services import tokens_revoke_all


@receiver(pre_save, sender=get_user_model(), dispatch_uid="accounts-revoke-tokens-on-new-password")
def revoke_tokens_on_new_password(sender, instance, update_fields=None, raw=False, **kwargs):
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return  # a fixture load, a new user, or a save that cannot touch the password (last_login)
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        tokens_revoke_all(user=instance)
