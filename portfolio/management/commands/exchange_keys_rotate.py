from django.core.management.base import BaseCommand

from portfolio.exchange.services import connection_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every exchange API key and secret with the first of MUR_FERNET_KEYS (after putting "
        "a new key first); the old keys can then be removed."
    )

    def handle(self, *args, **options):
        count = connection_keys_rotate()
        self.stdout.write(f"Re-encrypted the keys of {count} exchange connection(s) with the first key.")
