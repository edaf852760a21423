from django.core.management.base import BaseCommand, CommandError

from forecasting.binance import BinanceError
from forecasting.services.market_data import MarketDataError, asset_track


class Command(BaseCommand):
    help = "Track a Binance pair (e.g. BTCUSDT): checks it is listed, creates its refresh schedule."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="+")
        parser.add_argument("--interval", default="1h")

    def handle(self, *args, symbols, interval, **options):
        for symbol in symbols:
            try:
                asset = asset_track(symbol=symbol, interval=interval)
            except (BinanceError, MarketDataError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Tracking {asset.symbol} ({asset.base_asset}/{asset.quote_asset}, {asset.interval}).")
