"""The runner's safety state machine, robot sessions over UDP, and the deploy flags' checks.

State-machine tests drive `Runner._tick` with a made-up clock (tick i wakes at i periods), so each
transition happens at a tick a person can compute from the configured times.
"""

import contextlib
import json
import socket
import threading
import time

import numpy as np
import onnx
import pytest

from deploy import protocol
from deploy.backends.base import Reading
from deploy.backends.udp import UdpBackend
from deploy.cli import main as deploy_main
from deploy.metadata import RobotSpec
from deploy.peer import UdpPeer
from deploy.policy import OnnxPolicy
from deploy.runner import LoopConfig, Runner, blind_ticks_max
from deploy.safety import SafetyConfig
from deploy.states import PASSIVE, POLICY, RAMP, SAFE, StartConfig
from deploy.timing import now_ns

PERIOD_NS = 10_000_000  # 100 Hz
SPEC = RobotSpec(8, 2, np.array([-1, -1], np.float32), np.array([1, 1], np.float32))
DEFAULT_POSE = np.array([0.1, -0.2], np.float32)
SCALE = 0.5


@pytest.fixture(scope="module")
def policies(exported_reacher, tmp_path_factory):
    """The Reacher policy as it is (torque) and with metadata making it a position policy whose first
    observation field holds the joint positions: target = default_pose + 0.5 * action."""
    torque = exported_reacher[1]
    model = onnx.load(torque)
    prop = next(p for p in model.metadata_props if p.key == "robotrl.policy")
    meta = json.loads(prop.value)
    meta.update(action_mode="position",
                pd={"kp": [10.0, 10.0], "kd": [1.0, 1.0], "default_pose": DEFAULT_POSE.tolist(), "action_scale": SCALE},
                obs_fields=[["joint_pos", 2], ["sin_q", 2], ["qvel", 2], ["fingertip_to_target", 2]])
    prop.value = json.dumps(meta)
    position = tmp_path_factory.mktemp("position") / "position.onnx"
    onnx.save(model, position)
    return {"torque": torque, "position": position}


class ClockBackend:
    """Readings from a script on the test's clock: an array (a fresh observation), None (nothing new)."""

    name = "clock"

    def __init__(self, script, session=None):
        self.script, self.sent, self.now = list(script), [], 0
        if session is not None:
            self.session = session

    def spec(self):
        return SPEC

    def read(self):
        item = self.script.pop(0) if self.script else None
        return None if item is None else Reading(np.asarray(item, np.float32), self.now)

    def write(self, action):
        self.sent.append(np.array(action))

    def summary(self):
        return {}

    def close(self):
        pass


def drive(runner, ticks, between=None):
    """Run `ticks` ticks of `runner` at 100 Hz on the made-up clock; returns the command of each (None:
    nothing sent). `between(i)` runs before tick i (a robot restart, say)."""
    commands = []
    for i in range(ticks):
        if between is not None:
            between(i)
        runner.backend.now = i * PERIOD_NS
        runner.log.tick[i] = i
        sent = len(runner.backend.sent)
        runner._tick(i, i * PERIOD_NS)
        runner.log.ticks += 1
        commands.append(runner.backend.sent[-1] if len(runner.backend.sent) > sent else None)
    return commands


def make_runner(path, script, passive_s=0.03, ramp_s=0.04, safe="auto", watchdog_s=0.025, session=None):
    return Runner(OnnxPolicy(path), ClockBackend(script, session), LoopConfig(rate_hz=100, duration_s=1),
                  SafetyConfig(safe_action=safe, watchdog_s=watchdog_s), StartConfig(passive_s, ramp_s))


def obs_with_joints(q):
    return np.array([q[0], q[1], 0.1, 0.2, 0.0, 0.0, 0.3, -0.3], np.float32)


def states_of(runner):
    return runner.log.state[:runner.log.ticks].tolist()


def transitions(runner):
    return [(t["tick"], t["from"], t["to"]) for t in runner.states.transitions]


# ---- passive -> ramp -> policy ----------------------------------------------------------------------

def test_torque_policy_start_sequence_zero_torque_then_fades_the_policy_in(policies):
    obs = obs_with_joints([0.5, 0.5])
    runner = make_runner(policies["torque"], [obs] * 10)
    commands = drive(runner, 10)
    full = runner.safety.filter(runner.policy.act(obs).copy()).copy()  # what the policy commands for obs
    # Passive from tick 0 (first observation) for 30 ms: ticks 0-2 zero torque; ramp from tick 3 for 40 ms.
    assert transitions(runner) == [(3, "passive", "ramp"), (7, "ramp", "policy")]
    assert states_of(runner) == [PASSIVE] * 3 + [RAMP] * 4 + [POLICY] * 3
    for k in range(3):
        np.testing.assert_array_equal(commands[k], [0.0, 0.0])
    for k, progress in zip(range(3, 7), (0.0, 0.25, 0.5, 0.75), strict=True):
        np.testing.assert_allclose(commands[k], progress * full, atol=1e-6)
    np.testing.assert_allclose(commands[9], full, atol=1e-6)
    assert runner.states.counts == {"passive->ramp": 1, "ramp->policy": 1}


def test_position_policy_passive_holds_the_measured_pose_and_the_ramp_moves_it_to_the_default(policies):
    q = np.array([0.4, 0.0], np.float32)
    runner = make_runner(policies["position"], [obs_with_joints(q)] * 10)
    commands = drive(runner, 10)
    hold = (q - DEFAULT_POSE) / SCALE  # the action whose target is the measured pose: [0.6, 0.4]
    assert transitions(runner) == [(3, "passive", "ramp"), (7, "ramp", "policy")]
    for k in range(3):
        np.testing.assert_allclose(commands[k], hold, atol=1e-6)
    # Ramp: from the measured pose (progress 0) to the default pose (action 0) in 4 ticks.
    for k, progress in zip(range(3, 7), (0.0, 0.25, 0.5, 0.75), strict=True):
        np.testing.assert_allclose(commands[k], (1 - progress) * hold, atol=1e-6)
    np.testing.assert_allclose(commands[7], runner.policy.act(obs_with_joints(q)), atol=1e-6)


def test_position_policy_sends_nothing_before_its_first_observation(policies):
    runner = make_runner(policies["position"], [None, None, obs_with_joints([0.1, -0.2])])
    commands = drive(runner, 3)
    assert commands[:2] == [None, None]
    np.testing.assert_allclose(commands[2], [0.0, 0.0], atol=1e-6)  # the default pose, measured
    assert runner.safety.counts["no_observation"] == 2


def test_torque_policy_sends_zero_torque_before_its_first_observation(policies):
    runner = make_runner(policies["torque"], [None, None])
    commands = drive(runner, 2)
    for c in commands:
        np.testing.assert_array_equal(c, [0.0, 0.0])


# ---- policy -> safe -> passive ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["torque", "position"])
def test_a_stale_observation_makes_the_runner_safe_and_fresh_ones_restart_the_sequence(policies, mode):
    obs = obs_with_joints([0.3, -0.1])
    # Policy from tick 2 (ramp 20 ms); ticks 3-7 bring no news: the last valid observation (tick 2) is 10 and
    # 20 ms old at ticks 3 and 4 (the command repeats), older than the 25 ms watchdog from tick 5; news at tick 8.
    runner = make_runner(policies[mode], [obs] * 3 + [None] * 5 + [obs] * 2, passive_s=0.0, ramp_s=0.02)
    commands = drive(runner, 10)
    assert transitions(runner) == [(0, "passive", "ramp"), (2, "ramp", "policy"), (5, "policy", "safe"),
                                   (8, "safe", "passive"), (8, "passive", "ramp")]
    last_policy = commands[2]
    np.testing.assert_array_equal(commands[3], last_policy)
    np.testing.assert_array_equal(commands[4], last_policy)
    for k in range(5, 8):
        if mode == "torque":
            np.testing.assert_array_equal(commands[k], [0.0, 0.0])  # zero torque, not a held one
        else:
            np.testing.assert_array_equal(commands[k], last_policy)  # the last target, held
    assert runner.safety.counts["stale_observation"] == 3
    assert states_of(runner)[5:] == [SAFE] * 3 + [RAMP] * 2


class ArrivalBackend(ClockBackend):
    """ClockBackend whose readings also carry an arrival time, `lag_ns` before the read."""

    def __init__(self, script, lag_ns):
        super().__init__(script)
        self.lag_ns = lag_ns

    def read(self):
        reading = super().read()
        if reading is not None:
            reading.arrived_ns = self.now - self.lag_ns
        return reading


@pytest.mark.parametrize("lag_ms, stale_tick", [
    (8, 4),     # arrived 8 ms before it was read: the last one (read at 20 ms) is 28 ms old at tick 4
    (None, 5),  # no arrival time: counted from the read, 30 ms old at tick 5
    (-8, 5),    # an arrival after the read (a realtime-clock step): the read time bounds it
])
def test_the_watchdog_counts_from_the_observation_s_arrival_where_the_backend_has_it(policies, lag_ms, stale_tick):
    obs = obs_with_joints([0.3, -0.1])
    script = [obs] * 3 + [None] * 5
    backend = ClockBackend(script) if lag_ms is None else ArrivalBackend(script, lag_ms * 1_000_000)
    runner = Runner(OnnxPolicy(policies["torque"]), backend, LoopConfig(rate_hz=100, duration_s=1),
                    SafetyConfig(watchdog_s=0.025), StartConfig(0.0, 0.02))
    drive(runner, 8)
    assert (stale_tick, "policy", "safe") in transitions(runner)
    assert states_of(runner)[stale_tick - 1:stale_tick + 1] == [POLICY, SAFE]


class LagBackend(ClockBackend):
    """ClockBackend whose k-th reading arrived `lags_ms[k]` before it was read."""

    def __init__(self, script, lags_ms):
        super().__init__(script)
        self.lags = list(lags_ms)

    def read(self):
        reading = super().read()
        if reading is not None:
            reading.arrived_ns = self.now - self.lags.pop(0) * 1_000_000
        return reading


@pytest.mark.parametrize("mode", ["torque", "position"])
def test_a_new_observation_already_older_than_the_watchdog_is_stale_and_not_used(policies, mode):
    obs = obs_with_joints([0.3, -0.1])
    # Policy from tick 2; the observation read at tick 3 arrived 30 ms before (the watchdog is 25 ms).
    runner = Runner(OnnxPolicy(policies[mode]), LagBackend([obs] * 5, [0, 0, 0, 30, 0]),
                    LoopConfig(rate_hz=100, duration_s=1), SafetyConfig(watchdog_s=0.025), StartConfig(0.0, 0.02))
    commands = drive(runner, 5)
    assert transitions(runner) == [(0, "passive", "ramp"), (2, "ramp", "policy"), (3, "policy", "safe"),
                                   (4, "safe", "passive"), (4, "passive", "ramp")]
    assert runner.safety.counts["stale_observation"] == 1 and sum(runner.safety.counts.values()) == 1
    assert runner.log.fresh[:5].tolist() == [True, True, True, False, True]
    if mode == "torque":
        np.testing.assert_array_equal(commands[3], [0.0, 0.0])
    else:
        np.testing.assert_array_equal(commands[3], commands[2])  # the last target, held
    assert runner.log.obs_age_us[3] >= 30_000


@pytest.mark.parametrize("mode, override, expected", [
    ("torque", "hold", "last"), ("position", "zero", "zero")])
def test_safe_action_flag_overrides_what_the_safe_state_sends(policies, mode, override, expected):
    obs = obs_with_joints([0.3, -0.1])
    runner = make_runner(policies[mode], [obs, obs] + [None] * 4, passive_s=0.0, ramp_s=0.0, safe=override)
    commands = drive(runner, 6)
    assert runner.states.state == SAFE
    want = commands[1] if expected == "last" else np.zeros(2)
    np.testing.assert_allclose(commands[5], want, atol=1e-7)
    assert np.abs(commands[1]).sum() > 0


@pytest.mark.parametrize("mode", ["torque", "position"])
def test_one_bad_observation_gets_the_safe_command_for_its_tick_and_keeps_the_state(policies, mode):
    obs = obs_with_joints([0.3, -0.1])
    bad = obs.copy()
    bad[5] = np.nan
    runner = make_runner(policies[mode], [obs, obs, bad, obs], passive_s=0.0, ramp_s=0.0)
    commands = drive(runner, 4)
    assert states_of(runner) == [POLICY] * 4
    np.testing.assert_array_equal(commands[2], [0.0, 0.0] if mode == "torque" else commands[1])
    assert runner.safety.counts["bad_observation"] == 1
    assert runner.log.fresh[:4].tolist() == [True, True, False, True]


@pytest.mark.parametrize("mode", ["torque", "position"])
@pytest.mark.parametrize("bad", ["observation", "action"])
def test_a_stream_of_non_finite_values_blinds_the_runner_and_the_watchdog_makes_it_safe(policies, mode, bad,
                                                                                          monkeypatch):
    """An encoder fault sending NaN at rate (or a policy answering NaN) leaves the runner without a fresh
    command as much as silence does: past the watchdog it goes safe, and its way back is the start sequence."""
    obs = obs_with_joints([0.3, -0.1])
    broken = obs.copy()
    broken[5] = np.nan
    # Policy from tick 2 (ramp 20 ms); ticks 3-7 are bad: the last fresh command (tick 2) is older than the
    # 25 ms watchdog from tick 5; tick 8 is good again.
    script = [obs] * 3 + ([broken] * 5 if bad == "observation" else [obs] * 5) + [obs] * 2
    runner = make_runner(policies[mode], script, passive_s=0.0, ramp_s=0.02)
    if bad == "action":
        act = runner.policy.act
        monkeypatch.setattr(runner.policy, "act", lambda o: act(o) * np.nan if 3 <= runner.log.ticks <= 7 else act(o))
    commands = drive(runner, 10)
    assert transitions(runner)[:3] == [(0, "passive", "ramp"), (2, "ramp", "policy"), (5, "policy", "safe")]
    if bad == "observation":  # fresh observations from tick 8: the start sequence
        assert transitions(runner)[3:] == [(8, "safe", "passive"), (8, "passive", "ramp")]
        blind = 5
    elif mode == "torque":  # fresh observations all along: each start meets the failing policy in its ramp
        assert transitions(runner)[3:] == [(k, *move) for k in (6, 7) for move in
                                           (("safe", "passive"), ("passive", "ramp"), ("ramp", "safe"))] + [
            (8, "safe", "passive"), (8, "passive", "ramp")]
        blind = 5
    else:  # a position policy's ramp moves to the default pose without the policy: back to it at tick 8
        assert transitions(runner)[3:] == [(6, "safe", "passive"), (6, "passive", "ramp"), (8, "ramp", "policy")]
        blind = 3
    assert runner.safety.counts[f"bad_{bad}"] == blind and runner.safety.counts["stale_observation"] == blind - 2
    assert runner.log.fresh[:10].tolist() == [True] * 3 + [False] * blind + [True] * (7 - blind)
    for k in range(3, 3 + blind):
        np.testing.assert_array_equal(commands[k], [0.0, 0.0] if mode == "torque" else commands[2])


class ResizedRobot(ClockBackend):
    """A robot that restarts at its fifth read as another robot (3 actions) on the same address: like the
    UDP backend, it cannot take a command of the old size after that."""

    def __init__(self):
        super().__init__([obs_with_joints([0.3, -0.1])] * 1000, session=1)
        self.reads, self.closed, self.now = 0, False, now_ns()

    def spec(self):
        if self.session == 1:
            return SPEC
        return RobotSpec(8, 3, np.full(3, -1, np.float32), np.full(3, 1, np.float32))

    def read(self):
        self.reads += 1
        self.now = now_ns()
        if self.reads == 5:
            self.session = 2
        return super().read()

    def write(self, action):
        if self.session != 1:
            raise ValueError("could not broadcast input array from shape (2,) into shape (3,)")
        super().write(action)

    def close(self):
        self.closed = True


def test_a_robot_restarted_as_another_robot_is_refused_sent_nothing_and_the_run_ends_cleanly(policies):
    backend = ResizedRobot()
    runner = Runner(OnnxPolicy(policies["torque"]), backend, LoopConfig(rate_hz=100, duration_s=1.0),
                    SafetyConfig(), StartConfig(0.0, 0.0))
    s = runner.run()  # returns its summary: the outputs get written
    assert s["stopped_by"].startswith("restarted robot refused") and s["states"]["final"] == "safe"
    assert len(backend.sent) == 4 and backend.closed and s["ticks"] < 20


@pytest.mark.parametrize("mode", ["torque", "position"])
def test_the_end_of_a_run_moves_to_safe_and_sends_its_command(policies, mode):
    obs = obs_with_joints([0.3, -0.1])
    backend = ClockBackend([obs] * 100)
    backend.now = now_ns()
    runner = Runner(OnnxPolicy(policies[mode]), backend, LoopConfig(rate_hz=100, duration_s=0.05),
                    SafetyConfig(watchdog_s=10.0), StartConfig(0.0, 0.0))
    s = runner.run()
    assert s["states"]["transitions"]["policy->safe"] == 1 and s["states"]["final"] == "safe"
    assert s["states"]["log"][-1]["reason"] == "end of run"
    last_policy_command = runner.log.actions[runner.log.ticks - 1]
    want = np.zeros(2) if mode == "torque" else last_policy_command
    np.testing.assert_array_equal(backend.sent[-1], want)


@pytest.mark.parametrize("mode", ["torque", "position"])
def test_a_robot_restart_starts_the_sequence_again(policies, mode):
    obs = obs_with_joints([0.3, -0.1])
    runner = make_runner(policies[mode], [obs] * 8, passive_s=0.0, ramp_s=0.0, session=11)

    def restart(i):
        if i == 4:
            runner.backend.session = 12

    commands = drive(runner, 8, restart)
    assert transitions(runner)[2:] == [(4, "policy", "passive"), (4, "passive", "ramp"), (4, "ramp", "policy")]
    assert runner.states.transitions[2]["reason"] == "robot restarted (session 12)"
    assert len(commands) == 8


def test_blind_ticks_count_skipped_ticks_and_ticks_without_a_fresh_command():
    tick = np.array([0, 1, 2, 5, 6, 7, 8])        # 3 and 4 skipped
    fresh = np.array([1, 1, 1, 1, 0, 0, 1], bool)  # 6 and 7 held
    assert blind_ticks_max(tick, fresh) == 2
    assert blind_ticks_max(tick, np.array([1, 1, 0, 1, 1, 1, 1], bool)) == 3  # 2, 3, 4
    assert blind_ticks_max(tick, np.array([1, 1, 1, 1, 1, 0, 0], bool)) == 2  # the tail counts
    assert blind_ticks_max(tick, np.zeros(7, bool)) == 9  # never a valid observation: blind throughout
    assert blind_ticks_max(tick[:0], fresh[:0]) is None  # no tick ran


# ---- robot sessions over UDP --------------------------------------------------------------------------

class LinearRobot:
    spec = SPEC

    def __init__(self):
        # Joints within the position policy's reach (default_pose + 0.5 * [-1, 1]): a pose outside it gets no
        # command in passive, and a lock-step robot would never move.
        self.obs = np.linspace(-0.2, 0.5, 8).astype(np.float32)
        self.applied = []

    def observe(self):
        return self.obs

    def apply(self, action):
        self.applied.append(action.copy())
        self.obs = 0.5 * np.tile(action, 4).astype(np.float32)


def test_a_run_that_never_sent_a_command_asks_for_observations_but_not_at_exit(policies):
    # A robot that answers the handshake and then stays silent: a position policy has nothing to send, so the
    # runner asks (HELLO) once per 25 ms watchdog period during the 0.2 s run, and ends with BYE alone.
    peer = HandPeer(_spec([8, 2, -1, -1, 1, 1]))
    backend = UdpBackend("127.0.0.1", peer.port)
    peer.kinds.clear()
    runner = Runner(OnnxPolicy(policies["position"]), backend, LoopConfig(rate_hz=100, duration_s=0.2),
                    SafetyConfig(watchdog_s=0.025), StartConfig(0.0, 0.0))
    try:
        s = runner.run()
    finally:
        peer.thread.join(timeout=3)
        peer.sock.close()
    assert s["robot"]["sent"] == 0 and 2 <= s["robot"]["asked"] <= 9
    assert peer.kinds == [protocol.HELLO] * s["robot"]["asked"] + [protocol.BYE]


def test_a_lock_step_robot_whose_first_observation_went_stale_is_asked_for_a_new_one(policies):
    # A position policy has nothing to send before its first fresh observation; a lock-step robot answers only
    # datagrams. Its first observation waits 50 ms before the loop starts (older than the 25 ms watchdog).
    robot = LinearRobot()
    peer = UdpPeer(robot)
    peer.start()
    runner = Runner(OnnxPolicy(policies["position"]), UdpBackend("127.0.0.1", peer.port),
                    LoopConfig(rate_hz=100, duration_s=0.5), SafetyConfig(watchdog_s=0.025), StartConfig(0.0, 0.02))
    time.sleep(0.05)
    try:
        s = runner.run()
    finally:
        peer.close()
    assert s["safe_actions"]["stale_observation"] == 1 and s["robot"]["asked"] >= 1
    moves = [(t["from"], t["to"]) for t in s["states"]["log"]]
    assert moves[:2] == [("passive", "ramp"), ("ramp", "policy")], moves  # no detour through safe
    assert int(runner.log.fresh[:runner.log.ticks].sum()) >= 30 and len(robot.applied) >= 30


def test_a_robot_restarted_mid_run_is_recognised_within_two_ticks_and_gets_its_start_sequence(policies):
    first = UdpPeer(LinearRobot())
    port = first.port
    first.start()
    policy = OnnxPolicy(policies["torque"])
    runner = Runner(policy, UdpBackend("127.0.0.1", port),
                    LoopConfig(rate_hz=200, duration_s=2.0, spin_us=100),
                    SafetyConfig(watchdog_s=0.1), StartConfig(passive_s=0.05, ramp_s=0.05))
    result = {}
    thread = threading.Thread(target=lambda: result.update(runner.run()))
    thread.start()
    time.sleep(0.6)
    first.stop()
    time.sleep(0.15)  # the runner keeps sending to a dead port: stale, safe
    first.close()
    robot = LinearRobot()
    second = UdpPeer(robot, port=port)  # the same address, a new session
    second.start()
    thread.join(timeout=20)
    second.stop()
    second.close()
    s = result
    assert s["robot"]["restarts"] == 1 and s["stopped_by"] == "duration"
    restart = next(t for t in s["states"]["log"] if t["reason"].startswith("robot restarted"))
    # Recognised at the first or second tick (5 ms apart) after the new session's first datagram.
    ticks = runner.log.tick[:runner.log.ticks]
    recognised_at = int(runner.log.wake_ns[int(np.flatnonzero(ticks == restart["tick"])[0])])
    assert 0 <= recognised_at - second.first_sent_ns <= 2 * 5_000_000, (recognised_at - second.first_sent_ns) / 1e6
    after = [(t["from"], t["to"]) for t in s["states"]["log"] if t["tick"] >= restart["tick"]]
    assert after[:3] == [("safe", "passive"), ("passive", "ramp"), ("ramp", "policy")] or \
        after[:3] == [("policy", "passive"), ("passive", "ramp"), ("ramp", "policy")]
    # The new robot got zero torque first (passive), then fresh policy commands on its own observations.
    assert len(robot.applied) > 50
    np.testing.assert_array_equal(robot.applied[0], [0.0, 0.0])
    obs = np.linspace(-0.5, 0.5, 8).astype(np.float32)
    fresh = 0
    for sent in robot.applied[:-1]:
        if np.allclose(sent, policy.act_batch(obs[None])[0], atol=1e-6):
            fresh += 1
        obs = 0.5 * np.tile(sent, 4).astype(np.float32)
    assert fresh >= 50


class HandPeer:
    """A robot end written by hand: answers HELLO with the SPEC bytes the test gives, records what it gets."""

    def __init__(self, spec_packet):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3.0)
        self.port = self.sock.getsockname()[1]
        self.kinds, self.addr = [], None
        self.spec_packet = spec_packet
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            while True:
                data, self.addr = self.sock.recvfrom(4096)
                self.kinds.append(data[4])
                if data[4] == protocol.HELLO:
                    self.sock.sendto(self.spec_packet, self.addr)
                if data[4] == protocol.BYE:
                    return
        except OSError:
            return


def _spec(values, version=protocol.VERSION, session=5):
    data = bytearray(protocol.encode(protocol.SPEC, 0, 0, np.asarray(values, np.float32), session=session))
    data[5] = version
    return bytes(data)


@pytest.mark.parametrize("values, version, message", [
    ([np.nan, 2, -1, -1, 1, 1], 2, "malformed SPEC: obs_dim nan"),
    ([8, np.nan, -1, -1, 1, 1], 2, "malformed SPEC: act_dim nan"),
    ([8.5, 2, -1, -1, 1, 1], 2, "malformed SPEC: obs_dim 8.5"),
    ([-8, 2, -1, -1, 1, 1], 2, "malformed SPEC: obs_dim -8.0"),
    ([8, 3, -1, -1, 1, 1], 2, "malformed SPEC: 6 values, expected 8 for act_dim 3"),
    ([8, 2, np.nan, -1, 1, 1], 2, "malformed SPEC: action bounds"),
    ([8, 2, 1, -1, -1, 1], 2, "malformed SPEC: action_low"),
    ([8, 2, -1, -1, 1, 1], 0, "speaks protocol version 1, this runner speaks 2"),
])
def test_a_malformed_spec_is_refused_in_one_line_and_the_robot_gets_a_bye(values, version, message):
    peer = HandPeer(_spec(values, version))
    with pytest.raises(ValueError, match=message) as err:
        UdpBackend("127.0.0.1", peer.port)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"udp: robot at 127.0.0.1:{peer.port}")
    peer.thread.join(timeout=3)
    assert peer.kinds[-1] == protocol.BYE
    peer.sock.close()


def test_a_restarted_robot_with_a_malformed_spec_ends_the_run_safely_with_a_bye(policies):
    peer = HandPeer(_spec([8, 2, -1, -1, 1, 1]))
    backend = UdpBackend("127.0.0.1", peer.port)
    runner = Runner(OnnxPolicy(policies["torque"]), backend, LoopConfig(rate_hz=100, duration_s=2.0),
                    SafetyConfig(), StartConfig(0.0, 0.0))
    bad = _spec([np.nan, 2, -1, -1, 1, 1], session=6)
    threading.Timer(0.2, lambda: peer.sock.sendto(bad, peer.addr)).start()
    s = runner.run()
    peer.thread.join(timeout=3)
    assert s["stopped_by"].startswith("robot refused: udp: robot at 127.0.0.1") and "obs_dim nan" in s["stopped_by"]
    assert s["ticks"] < 100 and s["states"]["final"] == "safe"
    assert protocol.BYE in peer.kinds
    peer.sock.close()


def test_datagrams_from_another_address_and_unknown_sessions_are_counted_not_used():
    peer = HandPeer(_spec([8, 2, -1, -1, 1, 1]))
    backend = UdpBackend("127.0.0.1", peer.port)
    try:
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.sendto(protocol.encode(protocol.OBS, 1, 0, np.full(8, 0.9), session=5), backend.sock.getsockname())
        peer.sock.sendto(protocol.encode(protocol.OBS, 1, 0, np.full(8, 0.7), session=99), peer.addr)
        time.sleep(0.05)
        assert backend.read() is None
        assert backend.counts["wrong_address"] == 1 and backend.counts["unknown_session"] == 1
        backend.write(np.zeros(2, np.float32))  # an unknown session is asked to announce itself
        peer.sock.sendto(protocol.encode(protocol.OBS, 1, 0, np.full(8, 0.5), session=5), peer.addr)
        time.sleep(0.05)
        np.testing.assert_array_equal(backend.read().obs, np.full(8, 0.5, np.float32))
        stranger.close()
    finally:
        backend.close()
    peer.thread.join(timeout=3)
    assert protocol.HELLO in peer.kinds[1:] and peer.kinds[-1] == protocol.BYE


def test_a_datagram_dropped_after_the_newest_observation_leaves_that_observation_intact():
    peer = HandPeer(_spec([8, 2, -1, -1, 1, 1]))
    backend = UdpBackend("127.0.0.1", peer.port)
    try:
        peer.sock.sendto(protocol.encode(protocol.OBS, 1, 0, np.full(8, 0.25), session=5), peer.addr)
        peer.sock.sendto(protocol.encode(protocol.OBS, 2, 0, np.full(8, 0.75), session=9), peer.addr)  # unknown
        peer.sock.sendto(protocol.encode(protocol.OBS, 1, 0, np.full(8, 0.5), session=5), peer.addr)  # old seq
        time.sleep(0.05)
        np.testing.assert_array_equal(backend.read().obs, np.full(8, 0.25, np.float32))
        assert backend.counts["unknown_session"] == 1 and backend.counts["out_of_order"] == 1
    finally:
        backend.close()
        peer.thread.join(timeout=3)
        peer.sock.close()


def test_an_observation_read_before_a_restart_in_the_same_drain_is_not_the_new_robot_s():
    peer = HandPeer(_spec([8, 2, -1, -1, 1, 1]))
    backend = UdpBackend("127.0.0.1", peer.port)
    try:
        peer.sock.sendto(protocol.encode(protocol.OBS, 7, 0, np.full(8, 0.25), session=5), peer.addr)
        peer.sock.sendto(_spec([8, 2, -1, -1, 1, 1], session=6), peer.addr)  # the robot restarted
        time.sleep(0.05)
        assert backend.read() is None and backend.session == 6 and backend.counts["restarts"] == 1
        peer.sock.sendto(protocol.encode(protocol.OBS, 1, 0, np.full(8, 0.5), session=6), peer.addr)
        time.sleep(0.05)
        np.testing.assert_array_equal(backend.read().obs, np.full(8, 0.5, np.float32))
    finally:
        backend.close()
        peer.thread.join(timeout=3)
        peer.sock.close()


@contextlib.contextmanager
def stamped_udp_runner(policy_path):
    """A Runner (100 Hz, 25 ms watchdog, no passive or ramp) over UDP to a HandPeer, for tests that need the
    kernel's receive timestamps (skipped where there are none); the link is closed after."""
    peer = HandPeer(_spec([8, 2, -1, -1, 1, 1]))
    backend = UdpBackend("127.0.0.1", peer.port)
    try:
        if not backend.timestamps:
            pytest.skip("no kernel receive timestamps (SO_TIMESTAMPNS) on this OS")
        yield peer, Runner(OnnxPolicy(policy_path), backend, LoopConfig(rate_hz=100, duration_s=1),
                           SafetyConfig(watchdog_s=0.025), StartConfig(0.0, 0.0))
    finally:
        backend.close()
        peer.thread.join(timeout=3)
        peer.sock.close()


def test_an_observation_that_waited_in_the_socket_is_as_old_as_its_arrival_over_udp(policies):
    with stamped_udp_runner(policies["torque"]) as (peer, runner):
        peer.sock.sendto(protocol.encode(protocol.OBS, 1, 0, np.full(8, 0.1), session=5), peer.addr)
        time.sleep(0.02)  # the datagram waits in the runner's socket for 20 ms or more
        read_at = now_ns()
        for i, wake in enumerate((read_at, read_at + 10_000_000)):
            runner.log.tick[i] = i
            runner._tick(i, wake)
            runner.log.ticks += 1
        # Tick 1 is 10 ms after the read but 30 ms or more after the arrival: past the 25 ms watchdog.
        assert runner.log.fresh[0] and runner.log.obs_age_us[0] >= 20_000
        assert transitions(runner)[-1] == (1, "policy", "safe")
        assert runner.safety.counts["stale_observation"] == 1 and runner.repeats == 0


def test_an_observation_that_waited_in_the_socket_past_the_watchdog_is_not_used_over_udp(policies):
    with stamped_udp_runner(policies["torque"]) as (peer, runner):
        peer.sock.sendto(protocol.encode(protocol.OBS, 1, 0, np.full(8, 0.1), session=5), peer.addr)
        time.sleep(0.04)  # the datagram waits in the runner's socket for 40 ms or more
        runner.log.tick[0] = 0
        runner._tick(0, now_ns())
        runner.log.ticks = 1
        assert not runner.log.fresh[0] and runner.log.obs_age_us[0] >= 40_000
        # The first observation of the session: the start sequence has not begun, so it stays passive.
        assert transitions(runner) == [] and runner.log.state[0] == PASSIVE
        assert runner.safety.counts["stale_observation"] == 1 and runner.backend.counts["received"] == 1
        np.testing.assert_array_equal(runner.log.actions[0], [0.0, 0.0])  # zero torque, not the policy's
        # 40 ms later a datagram that has just arrived: the socket was last seen empty too long ago to prove it
        # fresh by that, so its timestamp decides, and it is used.
        time.sleep(0.04)
        peer.sock.sendto(protocol.encode(protocol.OBS, 2, 0, np.full(8, 0.1), session=5), peer.addr)
        time.sleep(0.002)
        runner.log.tick[1] = 1
        runner._tick(1, now_ns())
        runner.log.ticks = 2
        assert runner.log.fresh[1] and runner.safety.counts["stale_observation"] == 1


# ---- flags, checked before anything starts -------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--rate", "0"], "--rate 0.0: expected a finite number > 0"),
    (["--rate", "nan"], "--rate nan"),
    (["--rate", "inf"], "--rate inf"),
    (["--duration", "inf"], "--duration inf"),
    (["--duration", "-1"], "--duration -1.0"),
    (["--spin-us", "-5"], "--spin-us -5.0: expected a finite number >= 0"),
    (["--watchdog-ms", "0"], "--watchdog-ms 0.0"),
    (["--watchdog-ms", "nan"], "--watchdog-ms nan"),
    (["--max-rate", "-1"], "--max-rate -1.0"),
    (["--passive-s", "nan"], "--passive-s nan"),
    (["--ramp-s", "-2"], "--ramp-s -2.0"),
    (["--host", "no-such-robot.invalid"], "--host 'no-such-robot.invalid': cannot resolve"),
    (["--port", "70000"], "--port 70000"),
    (["--rt-priority", "500"], "--rt-priority 500: expected 1..99"),
    (["--cpu", "4096"], "--cpu 4096"),
    (["--rate", "10", "--watchdog-ms", "150"], "--watchdog-ms 150: shorter than two control periods at --rate 10 Hz"),
    (["--rate", "1000", "--spin-us", "1000"], "--spin-us 1000.0: expected 0 <= spin < the period"),
    (["--rate", "1000", "--spin-us", "900", "--rt-priority", "50"],
     "--spin-us 900 with --rt-priority: expected at most 500"),
])
def test_each_bad_flag_is_one_line_naming_it_before_any_robot_is_contacted(policies, capsys, flags, message):
    # No robot listens on the port: a flag not checked first would end in "no SPEC reply" after 2 s.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    start = time.monotonic()
    rc = deploy_main([str(policies["torque"]), "--backend", "udp", "--port", port, *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert len(err.splitlines()) == 1 and message in err, err
    assert "no SPEC reply" not in err and time.monotonic() - start < 1.5


@pytest.mark.parametrize("rate, expected_ms", [(1000, 50.0), (20, 150.0), (10, 300.0)])
def test_the_default_watchdog_is_three_periods_at_slow_rates(rate, expected_ms):
    import argparse

    from deploy.cli import add_arguments, run_configs

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    _, safety, _ = run_configs(parser.parse_args(["p.onnx", "--backend", "udp"]), rate)
    assert safety.watchdog_s * 1000 == pytest.approx(expected_ms)


def test_a_32_bit_kernel_timestamp_is_read_as_such():
    """SO_TIMESTAMPNS gives a 32-bit userspace (armhf controllers) a timespec of two 4-byte fields."""
    import struct

    from deploy.backends.udp import KernelStampedReading

    sec, nsec = divmod(time.time_ns(), 1_000_000_000)
    wide, narrow = KernelStampedReading(np.zeros(2, np.float32), 0), KernelStampedReading(np.zeros(2, np.float32), 0)
    wide.stamp(struct.pack("@qq", sec, nsec))
    narrow.stamp(struct.pack("@ii", sec, nsec))
    assert wide.arrived_ns is not None and narrow.arrived_ns is not None
    assert abs(wide.arrived_ns - narrow.arrived_ns) < 5_000_000  # each converted at its own moment


def test_an_inference_that_raises_is_answered_safely_and_reported_with_its_message(policies, monkeypatch):
    """A provider failing on every tick read as `bad_action` alone, as if the policy output NaN."""
    obs = obs_with_joints([0.3, -0.1])
    runner = make_runner(policies["torque"], [obs] * 4, passive_s=0.0, ramp_s=0.0)

    def failing(_obs):
        raise RuntimeError("CUDA failure 700: an illegal memory access\nmore lines")

    monkeypatch.setattr(runner.policy, "act", failing)
    commands = drive(runner, 3)
    np.testing.assert_array_equal(commands[1], [0.0, 0.0])
    summary = runner.summary(0, 0)
    assert summary["inference_errors"] == 3 and summary["safe_actions"]["bad_action"] == 3
    assert summary["first_inference_error"] == "tick 0: RuntimeError: CUDA failure 700: an illegal memory access"


def test_position_policy_sends_nothing_in_passive_while_the_pose_is_out_of_reach(policies, caplog):
    """A robot lying down: its calf far past what default_pose + scale * [-1, 1] reaches. Holding the clamped
    target would drive the joint to the bound with the robot's full gains, and the ramp would start there."""
    far = np.array([0.4, -0.9], np.float32)  # joint 1: action (-0.9 + 0.2) / 0.5 = -1.4, below -1
    near = np.array([0.4, 0.0], np.float32)
    runner = make_runner(policies["position"], [obs_with_joints(far)] * 5 + [obs_with_joints(near)] * 8)
    with caplog.at_level("WARNING", logger="deploy.states"):
        commands = drive(runner, 13)
    assert commands[:5] == [None] * 5 and states_of(runner)[:5] == [PASSIVE] * 5
    hold = (near - DEFAULT_POSE) / SCALE
    np.testing.assert_allclose(commands[5], hold, atol=1e-6)  # within reach: passive holds it
    # The passive time (3 ticks) counts from the first reachable observation, then the 4-tick ramp.
    assert transitions(runner) == [(8, "passive", "ramp"), (12, "ramp", "policy")]
    assert runner.summary(0, 0)["unreachable_pose_ticks"] == 5
    lines = [r.getMessage() for r in caplog.records if "outside the policy's action bounds" in r.getMessage()]
    assert lines == ["tick 0: passive: the measured pose is outside the policy's action bounds (joint 1 at action "
                     "-1.400, bounds [-1.000, 1.000]); sending nothing until it is within"]
