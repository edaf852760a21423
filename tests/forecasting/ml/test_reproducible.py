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


def test_an_ensemble_averages_members_trained_from_consecutive_seeds(recent, recent_model):
    config = dataclasses.replace(SMALL, ensemble=2)
    seen = []
    pair = train(recent, config, train_end=len(recent) - TEST_STEPS, progress=lambda e, n: seen.append((e, n)))
    # One bar for both seeds: it counts every epoch trained, out of all the seeds may take.
    assert seen == [(e, 4) for e in range(1, pair.meta["epochs"] + 1)]
    second = train(recent, dataclasses.replace(SMALL, seed=1), train_end=len(recent) - TEST_STEPS)
    members = pair.module.members
    first_sd, second_sd = members[0].state_dict(), members[1].state_dict()
    assert all(torch.equal(first_sd[k], v) for k, v in recent_model.module.state_dict().items())
    assert all(torch.equal(second_sd[k], v) for k, v in second.module.state_dict().items())
    assert [m["seed"] for m in pair.meta["members"]] == [0, 1]
    x = torch.randn(1, 60, len(pair.scaler_mean))
    with torch.no_grad():
        expected = (members[0](x)[0] + members[1](x)[0]) / 2
        torch.testing.assert_close(pair.module(x)[0], expected)
    loaded = TrainedModel.from_bytes(pair.to_bytes())
    assert loaded.forecast(recent) == pair.forecast(recent)


def test_an_artifact_keeps_its_seasonal_profile_and_blend(recent, recent_model):
    loaded = TrainedModel.from_bytes(recent_model.to_bytes())
    np.testing.assert_array_equal(loaded.profile, recent_model.profile)
    np.testing.assert_array_equal(loaded.base, recent_model.base)
    assert loaded.blend == recent_model.blend
    np.testing.assert_array_equal(loaded.mix, recent_model.mix)
    assert loaded.forecast(recent) == recent_model.forecast(recent)


def test_a_format_1_artifact_runs_as_it_was_trained(recent, recent_model):
    # Before the seasonal profile: no profile, no blend, and settings it never had stay off.
    blob = torch.load(io.BytesIO(recent_model.to_bytes()), weights_only=True)
    blob["format"] = 1
    for key in ("profile", "base", "blend", "mix", "burst_mix"):
        del blob[key]
    for key in (
        "seasonal",
        "aci_pooled",
        "range_weight",
        "ensemble",
        "max_shrink",
        "slow_window",
        "burst_halflife",
        "anchored",
    ):
        del blob["config"][key]
    buf = io.BytesIO()
    torch.save(blob, buf)
    old = TrainedModel.from_bytes(buf.getvalue())
    assert old.profile is None and old.base is None and old.blend == 1.0 and old.mix is None and old.burst_mix is None
    assert old.config.slow_window == 0 and old.frame(recent).slow is None and old.config.burst_halflife == 0
    assert not old.config.seasonal and old.config.range_weight == 0.0 and not old.config.aci_pooled
    assert old.frame(recent).season is None
    assert np.isfinite(np.array(old.forecast(recent)["prices"])).all()
