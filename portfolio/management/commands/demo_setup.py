import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from forecasting.binance import BinanceError
from forecasting.klines import KlineError
from forecasting.management.progress import ProgressBar
from forecasting.services.first_forecast import asset_forecasting_start
from forecasting.services.market_data import MarketDataError, asset_track, candles_refresh
from portfolio.demo import SAMPLE_NAME, sample_portfolio_create

DEMO_SYMBOLS = ("BTCUSDT", "ETHUSDT")


class Command(BaseCommand):
    help = (
        "First-run setup for a local instance: a demo account (local settings only, password printed once) "
        "with a sample portfolio (MUR_DEMO_PORTFOLIO), BTCUSDT and ETHUSDT tracked, their hourly candles "
        "backfilled (from Binance, or from MUR_KLINES_DIR when set), a first forecast made at once and a "
        "first training queued. Safe to run again: it only fetches what is new."
    )

    def add_arguments(self, parser):
        parser.add_argument("--symbols", nargs="+", default=list(DEMO_SYMBOLS))

    def handle(self, *args, symbols, **options):
        demo = self._demo_account()
        source = f"kline files in {settings.KLINES_DIR}" if settings.KLINES_DIR else "Binance"
        failures = []
        for symbol in symbols:
            try:
                asset = asset_track(symbol=symbol, interval="1h")
                with ProgressBar(f"{symbol} 1h from {source}") as bar:
                    result = candles_refresh(asset=asset, progress=bar)
            except (BinanceError, KlineError, MarketDataError, ValueError) as exc:
                failures.append(f"{symbol}: {exc}")
                continue
            self.stdout.write(f"{symbol}: {result.created} new candles ({result.unchanged} already stored).")
            self.stdout.write(f"{symbol}: {asset_forecasting_start(asset=asset).note}.")
        if failures:
            hint = (
                ""
                if settings.KLINES_DIR
                else ("\nNo network? Set MUR_KLINES_DIR to a folder of kline CSVs, e.g. MUR_KLINES_DIR=../shared/data.")
            )
            # The site still starts with what is stored; the beat schedule retries the refresh.
            self.stderr.write(self.style.WARNING("Could not load candles:\n  " + "\n  ".join(failures) + hint))
        if demo is not None and settings.DEMO_PORTFOLIO:
            # Only with a new account: a sample the person deleted is not brought back on the next run.
            if sample_portfolio_create(owner=demo, symbols=symbols) is not None:
                self.stdout.write(f"The demo account has a “{SAMPLE_NAME}” built from the stored candles.")

    def _demo_account(self):
        """The demo account if this call created it, else None."""
        User = get_user_model()
        if not settings.DEMO_ACCOUNT:
            self.stdout.write("Demo accounts are off here (MUR_DEMO_ACCOUNT): no demo account is created.")
            return None
        if User.objects.filter(username="demo").exists():
            self.stdout.write("Demo account: demo (password shown on first run only).")
            return None
        password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username="demo", email="demo@example.com", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the demo account (staff). Sign in with  username: demo  password: {password}\n"
                "This password is shown only once."
            )
        )
        return user
