import argparse

from django.core.management.base import BaseCommand, CommandError

from forecasting.management.progress import ProgressBar
from forecasting.metrics import metric_headings, metric_rows
from forecasting.models import Asset, ModelVersion, TrainingRun
from forecasting.services.forecasts import forecast_make
from forecasting.services.training_runs import train_config, training_run_execute


def backtest_table(version: ModelVersion) -> str:
    """The asset page's backtest table as text."""
    lines = [f"{'':<28}" + "".join(f"{h:>14}" for h in metric_headings(version.asset.interval))]
    for row in metric_rows(version):
        lines.append(f"{row['label']:<28}" + "".join(f"{cell['text']:>14}" for cell in row["cells"]))
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


class Command(BaseCommand):
    help = "Train a tracked asset's model now (in this process), run the promotion gate and print the backtest."

    def add_arguments(self, parser):
        parser.add_argument("symbol")
        parser.add_argument("--max-epochs", type=_positive_int, help="epoch cap per LSTM (default: TRAIN_MAX_EPOCHS)")

    def handle(self, *args, symbol, max_epochs, **options):
        asset = Asset.objects.filter(symbol=symbol.upper()).first()
        if asset is None:
            raise CommandError(f"{symbol.upper()} is not tracked. Run track_asset {symbol.upper()} first.")
        if TrainingRun.objects.filter(asset=asset, status=TrainingRun.Status.RUNNING).exists():
            raise CommandError(f"{asset.symbol} is being trained right now; try again when that run ends.")
        config = train_config(asset, **({"max_epochs": max_epochs} if max_epochs is not None else {}))
        run = TrainingRun.objects.create(asset=asset, triggered_by="command")
        with ProgressBar(f"Training {asset.symbol}", unit="epoch") as bar:
            version = training_run_execute(run_id=run.id, worker="command", config=config, on_progress=bar)
        run.refresh_from_db()
        if version is None:
            raise CommandError(f"Training failed: {run.error or 'see the log'}")
        version.refresh_from_db()
        self.stdout.write(
            f"{asset.symbol} v{version.version}: {version.status} "
            f"(trained in {version.train_seconds:.1f} s, {run.epoch} epochs)"
        )
        self.stdout.write(
            f"Backtest: {version.backtest.get('origins')} origins, {version.backtest.get('horizon')} steps ahead"
        )
        self.stdout.write(backtest_table(version))
        self.stdout.write(version.decision)
        forecast = forecast_make(asset=asset)
        self.stdout.write(f"Forecast from {forecast.origin_time:%Y-%m-%d %H:%M} UTC by {forecast.source}.")
