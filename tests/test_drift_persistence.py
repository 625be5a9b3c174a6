"""Baselines survive restarts: the state file, and the drift stage's state through it."""

from __future__ import annotations

import json
import logging

import numpy as np

from frictionlens.processors.drift import DriftStage
from frictionlens.processors.drift.design import FULL_BASELINE as WARMUP
from frictionlens.processors.drift.stage import StreamState
from frictionlens.processors.persistence import FILE_NAME, StateFile

NUMERIC = 5  # output_chars, output_tokens, latency, time_to_first_chunk, tokens_per_second


def _feed(stream: StreamState, values: np.ndarray, rng) -> list[str]:
    alarms = []
    for x in values:
        out = stream.observe((False,) * 7, (x,) * NUMERIC, None, "m", "fp", None, rng)
        alarms += [a.feature for a in out]
    return alarms


def test_state_file_round_trip_is_atomic(tmp_path):
    path = tmp_path / "data" / FILE_NAME
    sf = StateFile(path)
    assert sf.load() is None  # absent: fresh, quietly
    assert sf.save({"drift": {"a": [1, 2.5]}, "trajectory": {"task": 4}})
    assert sf.load() == {"drift": {"a": [1, 2.5]}, "trajectory": {"task": 4}}
    assert sf.save({"drift": {}})
    assert sf.load() == {"drift": {}}
    assert [p.name for p in path.parent.iterdir()] == [FILE_NAME]  # no temporary left behind


def test_corrupt_or_foreign_file_warns_and_starts_fresh(tmp_path, caplog):
    path = tmp_path / FILE_NAME
    for content in (
        '{"version": 1, "sect',
        '{"version": 99, "sections": {}}',
        "[1, 2]",
        b"\xff\xfe\x00",
    ):
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert StateFile(path).load() is None
        assert caplog.records, content


def test_save_failure_warns_and_returns_false(tmp_path, caplog):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING):
        assert not StateFile(blocker / FILE_NAME).save({"drift": {}})
        assert not StateFile(tmp_path / FILE_NAME).save({"drift": {"x": float("nan")}})  # not JSON
    assert len(caplog.records) == 2
    assert not (tmp_path / FILE_NAME).exists()


class _Stage:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.state = None

    def state_dict(self):
        if self.fail:
            raise RuntimeError("boom")
        return {"learned": 3}

    def load_state_dict(self, state):
        if self.fail:
            raise ValueError("unexpected")
        self.state = state


def test_stages_save_and_restore_their_sections(tmp_path, caplog):
    sf = StateFile(tmp_path / FILE_NAME)
    with caplog.at_level(logging.WARNING):
        assert sf.save_stages({"good": _Stage(), "bad": _Stage(fail=True)})
    assert sf.load() == {"good": {"learned": 3}}
    sf.save({"good": {"learned": 3}, "bad": {"x": 1}})
    good, bad = _Stage(), _Stage(fail=True)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        sf.restore_stages({"good": good, "bad": bad, "absent": _Stage()})
    assert good.state == {"learned": 3}
    assert len(caplog.records) == 1 and "bad" in caplog.records[0].getMessage()


def test_drift_baselines_survive_a_restart(tmp_path):
    rng = np.random.default_rng(3)
    first = DriftStage(
        seed=0,
        features=(
            "output_chars",
            "output_tokens",
            "latency",
            "time_to_first_chunk",
            "tokens_per_second",
            "format_invalid",
            "response_model",
        ),
    )
    stream = first._stream("openai/m/r", 0)
    assert _feed(stream, rng.standard_normal(WARMUP + 100), rng) == []
    sf = StateFile(tmp_path / FILE_NAME)
    assert sf.save_stages({"drift": first})
    size = len((tmp_path / FILE_NAME).read_bytes())
    assert size < 64 * 1024

    restored = DriftStage(seed=0)
    sf.restore_stages({"drift": restored})
    shift = rng.standard_normal(80) + 1.5
    alarms = _feed(restored.streams["openai/m/r"], shift[:30], rng)
    assert "output_chars" in alarms  # no baseline to learn first: it came back
    fresh = DriftStage(seed=0)
    # a fresh stage learns its baseline from these calls: nothing changed for it
    assert _feed(fresh._stream("openai/m/r", 0), shift, rng) == []


def test_bad_stream_state_drops_that_stream_only(caplog):
    stage = DriftStage(seed=0)
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        _feed(stage._stream(name, 0), rng.standard_normal(WARMUP), rng)
    state = json.loads(json.dumps(stage.state_dict()))
    state["streams"]["a"]["numeric"]["output_chars"]["reference"] = ["not a number"]
    other = DriftStage()
    with caplog.at_level(logging.WARNING):
        other.load_state_dict(state)
    assert list(other.streams) == ["b"] and caplog.records
    assert other.streams["b"].numeric[0].reference.ready
