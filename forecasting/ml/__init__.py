"""Forecasting models: arrays in, arrays and metrics out. No Django, no database.

`data` checks a candle series and builds scale-free features and targets, `model` is the
Lightning quantile LSTM, `train` fits, calibrates, saves and loads it, `backtest` scores it
and the baselines on the same walk-forward origins.
"""
