"""metrics.csv grows by appending while the columns stay the same, and is rewritten whole when they change."""

import csv
import time

from robotrl.train.logger import MetricsLogger


def rows(path):
    return list(csv.DictReader(path.open()))


def test_rows_append_new_columns_rewrite_and_a_joined_row_is_not_duplicated(tmp_path):
    log = MetricsLogger(tmp_path)
    for step in (10, 20, 30):
        log.log(step, {"a": step / 10})
    log.log(40, {"a": 4.0, "b": 1.0})
    log.log(40, {"eval": 7.0})
    log.log(50, {"a": 5.0})
    log.close()
    out = rows(tmp_path / "metrics.csv")
    assert [r["step"] for r in out] == ["10.0", "20.0", "30.0", "40.0", "50.0"]
    assert out[0]["b"] == "" and out[3]["b"] == "1.0" and out[3]["eval"] == "7.0" and out[4]["a"] == "5.0"


def test_resume_drops_rows_past_the_checkpoint_then_appends(tmp_path):
    log = MetricsLogger(tmp_path)
    for step in (10, 20, 30):
        log.log(step, {"a": 1.0})
    log.close()
    log = MetricsLogger(tmp_path, resume_step=20)
    log.log(30, {"a": 2.0})
    log.close()
    out = rows(tmp_path / "metrics.csv")
    assert [(r["step"], r["a"]) for r in out] == [("10.0", "1.0"), ("20.0", "1.0"), ("30.0", "2.0")]


def test_tensorboard_keeps_the_checkpoint_step_and_the_flushed_events_across_a_kill(tmp_path):
    """Events flushed before a checkpoint survive a kill (no close), and the resume purges only the steps
    after the checkpoint's: TensorBoard shows the curve metrics.csv holds."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = MetricsLogger(tmp_path)
    for step in (10, 20):
        log.log(step, {"a": 1.0})
    log.flush_events()  # the trainer's checkpoint at step 20
    log.log(30, {"a": 1.0})  # killed here: never flushed, never closed
    time.sleep(1.1)  # TensorBoard orders event files by the second in their names: the resume comes later
    log = MetricsLogger(tmp_path, resume_step=20)
    log.log(30, {"a": 2.0})
    log.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("a")] == [(10, 1.0), (20, 1.0), (30, 2.0)]
