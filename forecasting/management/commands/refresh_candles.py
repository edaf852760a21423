from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from forecasting.binance import BinanceError
from forecasting.klines import KlineError
from forecasting.management.progress import ProgressBar
from forecasting.models import Asset
from forecasting.services.market_data import MarketDataError, candles_backfill, candles_refresh


def _date(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r} is not a date like 2024-01-31 or 2024-01-31T12:00") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Fetch candles for tracked assets: new ones since the newest stored candle, or a backfill "
        "with --since DATE / --from-first. Reads MUR_KLINES_DIR instead of Binance when it is set."
    )

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="default: every tracked asset")
        parser.add_argument("--since", type=_date, help="backfill from this UTC date")
        parser.add_argument("--from-first", action="store_true", help="backfill from the pair's first candle")

    def handle(self, *args, symbols, since, from_first, **options):
        assets = (
            Asset.objects.filter(symbol__in=[s.upper() for s in symbols])
            if symbols
            else Asset.objects.filter(tracked=True)
        )
        missing = {s.upper() for s in symbols} - {a.symbol for a in assets}
        if missing:
            raise CommandError(f"Not tracked: {', '.join(sorted(missing))}. Run track_asset first.")
        for asset in assets:
            with ProgressBar(f"{asset.symbol} {asset.interval}") as bar:
                try:
                    if since or from_first:
                        result = candles_backfill(asset=asset, start=since, progress=bar)
                    else:
                        result = candles_refresh(asset=asset, progress=bar)
                except (BinanceError, KlineError, MarketDataError) as exc:
                    raise CommandError(f"{asset.symbol}: {exc}") from exc
            self.stdout.write(
                f"{asset.symbol}: {result.created} new, {result.updated} updated, {result.unchanged} unchanged candles."
            )
