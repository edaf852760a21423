"""Same data and seed, same model; an artifact predicts exactly what the trained model did."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

from forecasting.ml.train import TrainedModel, train

from .conftest import SMALL, TEST_STEPS


def _weights_equal(a, b) -> bool:
    sa, sb = a.module.state_dict(), b.module.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_weights_and_forecast(recent, recent_model):
    again = train(recent, SMALL, train_end=len(recent) - TEST_STEPS)
    assert _weights_equal(again, recent_model)
    np.testing.assert_array_equal(again.calibration, recent_model.calibration)
    assert again.shrink == recent_model.shrink
    assert again.forecast(recent) == recent_model.forecast(recent)


def test_another_seed_other_weights(recent, recent_model):
    other = train(recent, dataclasses.replace(SMALL, seed=1), train_end=len(recent) - TEST_STEPS)
    assert not _weights_equal(other, recent_model)


def test_artifact_round_trip(recent, recent_model):
    blob = recent_model.to_bytes()
    loaded = TrainedModel.from_bytes(blob)
    assert loaded.config == recent_model.config
    assert loaded.meta == recent_model.meta
    assert loaded.shrink == recent_model.shrink
    assert (loaded.aci_rate, loaded.aci_start_time) == (recent_model.aci_rate, recent_model.aci_start_time)
    np.testing.assert_array_equal(loaded.calibration, recent_model.calibration)
    assert _weights_equal(loaded, recent_model)
    np.testing.assert_array_equal(loaded.predict_prices(recent)[0], recent_model.predict_prices(recent)[0])
    assert loaded.forecast(recent) == recent_model.forecast(recent)


def test_artifact_of_another_format_is_refused(recent_model):
    blob = torch.load(io.BytesIO(recent_model.to_bytes()), weights_only=True)
    blob["format"] = 999
    buf = io.BytesIO()
    torch.save(blob, buf)
    with pytest.raises(ValueError, match="format 999"):
        TrainedModel.from_bytes(buf.getvalue())
