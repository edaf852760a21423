from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, transaction

from forecasting.intervals import interval_ms
from forecasting.management.progress import ProgressBar
from forecasting.models import Asset
from forecasting.services.first_forecast import asset_forecasting_start
from forecasting.services.market_data import (
    MarketDataError,
    asset_track,
    candles_import_file,
    parse_kline_name,
    split_symbol,
)


class Command(BaseCommand):
    help = (
        "Import kline CSV files: the `open_time,open,...,close_time` header format or Binance's "
        "12-column header-less dumps (ms or µs times). Symbol and interval come from names like "
        "BTCUSDT-1h.csv or BTCUSDT-1h-2024-01.csv unless given. Every row is checked before any is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--symbol")
        parser.add_argument("--interval")

    def handle(self, *args, files, symbol, interval, **options):
        for path in files:
            named = parse_kline_name(path)
            sym = (symbol or (named and named[0]) or "").upper()
            ivl = interval or (named and named[1])
            if not sym or not ivl:
                raise CommandError(
                    f"{path}: cannot tell symbol and interval from the name; pass --symbol and --interval."
                )
            try:
                # One transaction with the import: a file that fails does not leave a new symbol
                # tracked (and scheduled for refresh) without its candles.
                with transaction.atomic():
                    interval_ms(ivl)
                    asset = Asset.objects.filter(symbol=sym).first()
                    if asset is None:
                        base, quote = split_symbol(sym)
                        asset = asset_track(symbol=sym, interval=ivl, base_asset=base, quote_asset=quote)
                    with ProgressBar(path.name) as bar:
                        result = candles_import_file(asset=asset, path=path, interval=ivl, progress=bar)
            except (MarketDataError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            except (OperationalError, InterfaceError) as exc:
                # E.g. the connection dropped: the file's transaction rolled back as a whole.
                raise CommandError(
                    f"{path}: the database connection failed during the import, so nothing from this file "
                    f"was stored ({str(exc).strip()}). Run the command again once the database is reachable."
                ) from exc
            self.stdout.write(
                f"{path.name}: {result.created} new, {result.updated} updated, {result.unchanged} unchanged candles."
            )
            if result.written:
                self.stdout.write(f"{asset.symbol}: {asset_forecasting_start(asset=asset).note}.")
