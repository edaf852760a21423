"""What serves an asset's forecasts and how it compares with the statistical baseline, in plain
words: one sentence and its numbers, for the asset page and the API alike.

The numbers are the ones the promotion gate judged: a version's backtest metrics beside the
seasonal band's on the same origins (baseline_metrics["seasonal_band"]). Versions backtested
before the seasonal band was part of the backtest have none; the sentence then says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Asset, Forecast, ModelVersion

DAY_MS = 86_400_000
STATISTICAL_SERVES = "The statistical band is served"


@dataclass(frozen=True)
class Comparison:
    text: str
    model_version: int | None = None  # the version compared: the champion, else the newest version
    pinball_ratio: float | None = None  # its pinball loss over the statistical band's: below 1 is better
    model_coverage: float | None = None  # share of backtest closes inside its band
    baseline_coverage: float | None = None  # the same for the statistical band
    backtest_days: float | None = None  # length of the backtest the numbers come from


def serving_comparison(
    *,
    asset: Asset,
    champion: ModelVersion | None,
    newest_version: ModelVersion | None,
    forecast: Forecast | None = None,
) -> Comparison:
    """The champion against the statistical band, or why the baseline serves. `forecast`, the one
    serving, tells the naive band (served while the history is too short for the statistical band)
    from the statistical band. No queries: the callers have read these already."""
    if champion is not None:
        numbers = _numbers(asset, champion)
        if numbers is None:
            return Comparison(
                f"Model v{champion.version} serves; it was backtested before the statistical band "
                f"was part of the backtest, so the two were not compared.",
                model_version=champion.version,
            )
        return Comparison(_sentence(f"model v{champion.version}'s band", champion, numbers), **numbers)
    if forecast is not None and forecast.source == Forecast.NAIVE_SOURCE:
        return Comparison(
            "The naive volatility band is served: the history is still too short for the statistical band."
        )
    if newest_version is None:
        return Comparison(f"{STATISTICAL_SERVES}: no model has been trained yet.")
    number = newest_version.version
    if newest_version.status == ModelVersion.Status.REJECTED:
        numbers = _numbers(asset, newest_version)
        if numbers is None:
            return Comparison(
                f"{STATISTICAL_SERVES}: the latest model, v{number}, was rejected by the promotion gate.",
                model_version=number,
            )
        # A model can beat the band and still be rejected (its MAE, or a champion since withdrawn).
        lead = "did not beat it" if numbers["pinball_ratio"] >= 1 else "was rejected by the promotion gate"
        return Comparison(
            f"{STATISTICAL_SERVES}: the latest model, v{number}, {lead}. "
            + _sentence("its band", newest_version, numbers),
            **numbers,
        )
    if newest_version.status == ModelVersion.Status.RETIRED:
        return Comparison(
            f"{STATISTICAL_SERVES}: no model is champion (the latest, v{number}, is retired).", model_version=number
        )
    return Comparison(f"{STATISTICAL_SERVES}: no model beat it.")


def _numbers(asset: Asset, version: ModelVersion) -> dict | None:
    ours = version.metrics or {}
    band = (version.baseline_metrics or {}).get("seasonal_band") or {}
    if ours.get("pinball") is None or not band.get("pinball"):
        return None
    return {
        "model_version": version.version,
        "pinball_ratio": ours["pinball"] / band["pinball"],
        "model_coverage": ours.get("coverage"),
        "baseline_coverage": band.get("coverage"),
        "backtest_days": _backtest_days(asset, version),
    }


def _backtest_days(asset: Asset, version: ModelVersion) -> float | None:
    """From the first backtest candle to the end of the last one the version read."""
    start = (version.backtest or {}).get("test_start")
    if not isinstance(start, int) or version.data_end is None:
        return None
    end = (version.data_end + asset.interval_delta).timestamp() * 1000
    days = round((end - start) / DAY_MS, 1)
    return days if days > 0 else None


def _sentence(subject: str, version: ModelVersion, numbers: dict) -> str:
    days = numbers["backtest_days"]
    over = f"Over the last {days:g} day{'' if days == 1 else 's'} of its backtest" if days else "Over its backtest"
    gain = 1 - numbers["pinball_ratio"]
    if round(gain, 3) == 0:
        how = "as sharp as"
    else:
        how = f"{abs(gain):.1%} {'sharper' if gain > 0 else 'less sharp'} than"
    text = f"{over} {subject} was {how} the statistical band (by pinball loss)"
    ours, theirs = numbers["model_coverage"], numbers["baseline_coverage"]
    if ours is not None and theirs is not None:
        text += f", at {ours:.1%} coverage against the statistical band's {theirs:.1%}"
        aim = (version.metrics or {}).get("band")
        if aim:
            text += f" (the aim is {aim:.0%})"
    return text + "."
