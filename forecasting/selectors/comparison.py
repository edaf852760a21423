"""What serves an asset's forecasts and how it compares with the statistical baseline, in plain
words: one sentence and its numbers, for the asset page and the API alike.

The numbers are the ones the promotion gate judged: a version's backtest metrics beside the
seasonal band's on the same origins (baseline_metrics["seasonal_band"]). Versions backtested
before the seasonal band was part of the backtest have none; the sentence then says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.times import datetime_to_ms

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
    verdict: str = ""  # one plain sentence for people who do not read pinball losses


def _verdict(numbers: dict | None, *, serving_model: bool) -> str:
    """What the numbers mean, without the jargon: is the range better than the plain statistical
    one, does it hold the price as often as it says, and is the middle line worth reading."""
    if numbers is None:
        if serving_model:
            return "A trained model serves; its backtest has no comparison with the statistical range."
        return (
            "A statistical range of likely prices serves (no trained model yet): it widens when the "
            "market is jumpy and narrows when it is calm, nothing more."
        )
    ratio, coverage, mae_ratio = numbers["pinball_ratio"], numbers["model_coverage"], numbers.get("mae_ratio")
    if serving_model:
        if ratio < 0.995:
            lead = f"The model's range of likely prices is better than the plain statistical range ({1 - ratio:.1%})"
        elif ratio <= 1.005:
            lead = "The model's range of likely prices is about as good as the plain statistical range"
        else:
            lead = f"The model's range of likely prices is worse than the plain statistical range ({ratio - 1:.1%})"
    else:
        lead = "The plain statistical range serves, because the latest model's range was not better"
    parts = [lead]
    if coverage is not None and serving_model:
        parts.append(f"it held the actual price {coverage * 100:.0f} times in 100 in its backtest (it aims at 80)")
    text = "; ".join(parts) + "."
    if mae_ratio is not None and serving_model:
        if mae_ratio < 0.995:
            text += f" Its middle line beat “the price stays the same” by {1 - mae_ratio:.1%}."
        else:
            text += " Its middle line is no better than “the price stays the same”: read the range, not the line."
    return text


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
    comparison = _comparison(asset=asset, champion=champion, newest_version=newest_version, forecast=forecast)
    if not comparison.verdict:
        comparison = replace(comparison, verdict=_verdict(None, serving_model=False))
    return comparison


def _comparison(
    *, asset: Asset, champion: ModelVersion | None, newest_version: ModelVersion | None, forecast: Forecast | None
) -> Comparison:
    if champion is not None:
        numbers = _numbers(asset, champion)
        if numbers is None:
            return Comparison(
                f"Model v{champion.version} serves; it was backtested before the statistical band "
                f"was part of the backtest, so the two were not compared.",
                model_version=champion.version,
                verdict=_verdict(None, serving_model=True),
            )
        return Comparison(
            _sentence(f"model v{champion.version}'s band", champion, numbers),
            verdict=_verdict(numbers, serving_model=True),
            **_fields(numbers),
        )
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
            verdict=_verdict(numbers, serving_model=False),
            **_fields(numbers),
        )
    if newest_version.status == ModelVersion.Status.RETIRED:
        return Comparison(
            f"{STATISTICAL_SERVES}: no model is champion (the latest, v{number}, is retired).", model_version=number
        )
    return Comparison(f"{STATISTICAL_SERVES}: no model beat it.")


def _numbers(asset: Asset, version: ModelVersion) -> dict | None:
    ours = version.metrics or {}
    band = (version.baseline_metrics or {}).get("seasonal_band") or {}
    naive = (version.baseline_metrics or {}).get("naive") or {}
    if ours.get("pinball") is None or not band.get("pinball"):
        return None
    return {
        "model_version": version.version,
        "pinball_ratio": ours["pinball"] / band["pinball"],
        "model_coverage": ours.get("coverage"),
        "baseline_coverage": band.get("coverage"),
        "backtest_days": _backtest_days(asset, version),
        "mae_ratio": ours["mae"] / naive["mae"] if ours.get("mae") is not None and naive.get("mae") else None,
    }


def _fields(numbers: dict) -> dict:
    return {k: v for k, v in numbers.items() if k != "mae_ratio"}


def _backtest_days(asset: Asset, version: ModelVersion) -> float | None:
    """From the first backtest candle to the end of the last one the version read."""
    start = (version.backtest or {}).get("test_start")
    if not isinstance(start, int) or version.data_end is None:
        return None
    end = datetime_to_ms(version.data_end + asset.interval_delta)
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
