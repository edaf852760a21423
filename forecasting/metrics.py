"""The backtest table: which metrics, in which order, under which headings, and how each number
reads. One definition for the asset page, admin and the train_asset command."""

from __future__ import annotations

from core.formatting import DASH, significant

# (key in the metrics, heading, kind); "{interval}" in a heading is the asset's candle interval.
METRIC_COLUMNS = [
    ("mae", "MAE", "num"),
    ("mae_h1", "MAE {interval}", "num"),
    ("mase", "MASE", "num"),
    ("directional_accuracy", "direction", "pct"),
    ("pinball", "pinball", "num"),
    ("coverage", "80% coverage", "pct"),
    ("width", "80% width", "num"),
]
# The baselines every model is scored against, in the order shown.
BASELINE_ROWS = [
    ("seasonal_band", "statistical baseline (seasonal band)"),
    ("naive", "naive (last price)"),
    ("drift", "drift"),
    ("naive_band", "naive band"),
]
BASELINE_LABELS = dict(BASELINE_ROWS)


def metric_text(value, kind: str) -> str:
    if value is None:
        return DASH
    return f"{value:.1%}" if kind == "pct" else significant(value)


def metric_headings(interval: str) -> list[str]:
    return [heading.format(interval=interval) for _, heading, _ in METRIC_COLUMNS]


def metric_rows(version) -> list[dict]:
    """The version's backtest row, then each baseline scored on the same origins, then the champion
    it was gated against: each row a key, a label, whether it is the version's own, its metrics and
    its cells as text."""
    rows = [{"key": "model", "label": f"model v{version.version}", "ours": True, "metrics": version.metrics}]
    baselines = version.baseline_metrics or {}
    known = [key for key, _ in BASELINE_ROWS if key in baselines]
    other = sorted(set(baselines) - set(BASELINE_LABELS) - {"champion"})
    for key in known + other:
        rows.append(
            {
                "key": key,
                "label": BASELINE_LABELS.get(key, key.replace("_", " ")),
                "ours": False,
                "metrics": baselines[key],
            }
        )
    previous = baselines.get("champion")
    if previous:
        rows.append(
            {
                "key": "champion",
                "label": f"previous champion v{previous.get('version', '?')}",
                "ours": False,
                "metrics": previous,
            }
        )
    for row in rows:
        row["cells"] = [
            {"key": key, "text": metric_text(row["metrics"].get(key), kind)} for key, _, kind in METRIC_COLUMNS
        ]
    return rows
