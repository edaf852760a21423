from django.core.management.base import BaseCommand, CommandError

from forecasting.models import Asset
from forecasting.selectors.market_data import candle_gaps


class Command(BaseCommand):
    help = "List missing candles (gaps) between the first and newest stored candle of each asset."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*")

    def handle(self, *args, symbols, **options):
        assets = Asset.objects.filter(symbol__in=[s.upper() for s in symbols]) if symbols else Asset.objects.all()
        if symbols and assets.count() != len(set(symbols)):
            raise CommandError(
                "Unknown symbol(s): " + ", ".join({s.upper() for s in symbols} - {a.symbol for a in assets})
            )
        for asset in assets:
            gaps = candle_gaps(asset=asset)
            total = sum(g.missing for g in gaps)
            self.stdout.write(f"{asset.symbol} {asset.interval}: {len(gaps)} gap(s), {total} missing candle(s)")
            for g in gaps:
                self.stdout.write(f"  {g.start:%Y-%m-%d %H:%M} .. {g.end:%Y-%m-%d %H:%M} UTC  ({g.missing} missing)")
