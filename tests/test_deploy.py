"""The runner: fixed-rate loop, safety, UDP protocol and backends, fault injection, signals."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest

from deploy import protocol
from deploy.backends.base import BackendError, Reading
from deploy.backends.udp import UdpBackend
from deploy.cli import main as deploy_main
from deploy.metadata import RobotSpec
from deploy.peer import UdpPeer
from deploy.policy import OnnxPolicy, resolve_provider
from deploy.realtime import measured, steal_ticks
from deploy.runner import LoopConfig, Runner, StopFlag, run_schedule
from deploy.safety import Safety, SafetyConfig
from deploy.states import StartConfig
from deploy.timing import Scheduler, TickLog, now_ns

REACHER = RobotSpec(8, 2, np.array([-1, -1], np.float32), np.array([1, 1], np.float32))
NO_START = StartConfig(passive_s=0.0, ramp_s=0.0)
"""Straight to the policy on the first observation (the start sequence has its own tests)."""


class LinearRobot:
    """A robot whose next observation is a fixed function of the command: obs = 0.5 * [a, a, a, a]."""

    spec = REACHER

    def __init__(self) -> None:
        self.obs = np.linspace(-0.5, 0.5, 8).astype(np.float32)
        self.applied: list[np.ndarray] = []

    def observe(self) -> np.ndarray:
        return self.obs

    def apply(self, action: np.ndarray) -> None:
        self.applied.append(action.copy())
        self.obs = 0.5 * np.tile(action, 4).astype(np.float32)


class ScriptedBackend:
    """Hands the runner a scripted list of readings (None: nothing new; an exception: a failed read)."""

    name = "scripted"

    def __init__(self, script, spec=REACHER):
        self.script, self._spec, self.sent, self.closed = list(script), spec, [], False

    def spec(self):
        return self._spec

    def read(self):
        item = self.script.pop(0) if self.script else None
        if isinstance(item, Exception):
            raise item
        return None if item is None else Reading(np.asarray(item, np.float32), now_ns())

    def write(self, action):
        self.sent.append(np.array(action))

    def summary(self):
        return {}

    def close(self):
        self.closed = True


@pytest.fixture
def onnx_policy(exported_reacher):
    return exported_reacher[1]


# ---- scheduler ---------------------------------------------------------------------------------------------

def test_deadlines_are_absolute_so_a_late_tick_does_not_shift_later_ones():
    sched = Scheduler(100.0)
    assert sched.period_ns == 10_000_000
    assert sched.deadline(250) - sched.deadline(0) == 250 * 10_000_000
    wake = sched.wait(2)
    assert wake >= sched.deadline(2)
    # 3 periods and a bit after deadline 2, the next deadline still ahead is 6 (3, 4, 5 are past).
    assert sched.next_tick_after(sched.deadline(2) + 31_000_000) == 6


def test_a_tick_that_runs_past_the_next_deadline_is_an_overrun_and_skips_the_missed_ticks():
    log = TickLog(20, 1)

    def tick(i, wake):
        if i == 3:
            time.sleep(0.045)  # 2.25 periods of 20 ms: deadlines 4 and 5 pass while we work

    overruns, skipped = run_schedule(LoopConfig(rate_hz=50, duration_s=0.4), tick, log, StopFlag())
    assert overruns >= 1 and log.overrun[3]
    assert skipped >= 2
    assert log.ticks + skipped == 20
    # The 4th tick run ends at least 45 ms after its deadline k, past k+1 and k+2: the next run is k+3 or later.
    assert log.tick[4] >= log.tick[3] + 3


def test_overrun_policy_stop_ends_the_run_on_the_safe_action(onnx_policy):
    backend = ScriptedBackend([[0.1] * 8] * 50)
    runner = Runner(OnnxPolicy(onnx_policy), backend, LoopConfig(rate_hz=50, duration_s=1.0, overrun="stop"),
                    SafetyConfig(safe_action="zero"), NO_START)
    original = runner.policy.act

    def slow_act(obs):
        time.sleep(0.05)
        return original(obs)

    runner.policy.act = slow_act
    s = runner.run()
    assert s["stopped_by"] == "overrun" and s["ticks"] == 1 and s["overruns"] == 1
    np.testing.assert_array_equal(backend.sent[-1], [0.0, 0.0])
    assert backend.closed


# ---- safety ----------------------------------------------------------------------------------------------

def test_actions_are_clamped_and_rate_limited():
    s = Safety(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), period_s=0.01, config=SafetyConfig(max_rate=10.0))
    # 10 units/s at 100 Hz: at most 0.1 per tick from the last command (zero at start).
    np.testing.assert_allclose(s.filter(np.array([5.0, -0.05], np.float32)), [0.1, -0.05], atol=1e-7)
    np.testing.assert_allclose(s.filter(np.array([5.0, -5.0], np.float32)), [0.2, -0.15], atol=1e-7)
    s2 = Safety(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), period_s=0.01)
    np.testing.assert_allclose(s2.filter(np.array([5.0, -5.0], np.float32)), [1.0, -2.0])


def _peak_bytes(call, times=100):
    """The most memory Python and numpy held at once above the start while `call` ran `times` times."""
    for _ in range(10):
        call()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(times):
            call()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def test_the_rate_limit_builds_no_array_per_tick():
    s = Safety(np.array([-1.0, -1.0]), np.array([1.0, 1.0]), period_s=0.01, config=SafetyConfig(max_rate=10.0))
    action = np.array([0.9, -0.9], np.float32)
    # The finite check's list of Python floats is the one allocation the path has; the limit adds no array.
    extra = _peak_bytes(lambda: s.filter(action)) - _peak_bytes(lambda: s.finite(action))
    assert extra < sys.getsizeof(np.zeros(2, np.float32)), extra
    np.testing.assert_allclose(s.last, [0.9, -0.9], atol=1e-6)  # 20 ticks of 0.1 reached the action


@pytest.mark.parametrize("mode, expected", [("hold", [0.5, -0.5]), ("zero", [0.0, 0.0])])
def test_a_nan_or_inf_action_gives_the_safe_action_and_is_counted(mode, expected):
    s = Safety(np.array([-1.0, -1.0]), np.array([1.0, 1.0]), 0.02, SafetyConfig(safe_action=mode))
    s.filter(np.array([0.5, -0.5], np.float32))
    np.testing.assert_array_equal(s.filter(np.array([np.nan, 0.2], np.float32)), expected)
    np.testing.assert_array_equal(s.filter(np.array([0.1, np.inf], np.float32)), expected)
    assert s.counts["bad_action"] == 2


def test_bad_observations_stale_data_and_failed_reads_give_safe_actions_without_stopping(onnx_policy):
    ok = [0.1] * 8
    script = [ok, [np.nan] + [0.0] * 7, ok, [np.inf] * 8, BackendError("cable"), ok] + [None] * 20 + [ok]
    backend = ScriptedBackend(script)
    runner = Runner(OnnxPolicy(onnx_policy), backend, LoopConfig(rate_hz=100, duration_s=0.3),
                    SafetyConfig(safe_action="zero", watchdog_s=0.035))
    s = runner.run()
    assert s["ticks"] + s["skipped"] == 30 and s["stopped_by"] == "duration"
    assert s["safe_actions"]["bad_observation"] == 2
    assert s["safe_actions"]["read_error"] == 1
    # 20 ticks without news at 100 Hz with a 35 ms watchdog: the first ~3 repeat, the rest are stale.
    assert s["safe_actions"]["stale_observation"] >= 3
    np.testing.assert_array_equal(backend.sent[1], [0.0, 0.0])  # the NaN observation's tick
    assert backend.closed


def test_a_tick_without_news_repeats_the_last_command_until_the_watchdog(onnx_policy):
    backend = ScriptedBackend([[0.3] * 8, None, None])
    s = Runner(OnnxPolicy(onnx_policy), backend, LoopConfig(rate_hz=100, duration_s=0.03),
               SafetyConfig(safe_action="zero", watchdog_s=1.0), NO_START).run()
    assert s["repeated_commands"] == s["ticks"] - 1 and sum(s["safe_actions"].values()) == 0
    assert np.abs(backend.sent[0]).sum() > 0
    for sent in backend.sent[1:-1]:  # the last is the safe action at exit
        np.testing.assert_array_equal(sent, backend.sent[0])


def test_no_observation_yet_gives_the_safe_action(onnx_policy):
    backend = ScriptedBackend([None, None] + [[0.3] * 8] * 8)
    s = Runner(OnnxPolicy(onnx_policy), backend, LoopConfig(rate_hz=100, duration_s=0.1),
               SafetyConfig(safe_action="zero"), NO_START).run()
    assert s["ticks"] >= 3
    assert s["safe_actions"]["no_observation"] == 2
    np.testing.assert_array_equal(backend.sent[0], [0.0, 0.0])
    np.testing.assert_array_equal(backend.sent[1], [0.0, 0.0])
    assert np.abs(backend.sent[2]).sum() > 0


# ---- policy file and robot checks -----------------------------------------------------------------------

class _PublicSession:
    """An InferenceSession seen through its public methods only (an onnxruntime without `_sess`)."""

    def __init__(self, session):
        self._session = session

    def run_with_iobinding(self, binding, run_options=None):
        return self._session.run_with_iobinding(binding, run_options)


def test_act_through_the_bound_compiled_call_matches_session_run_and_falls_back_to_the_public_call(onnx_policy):
    policy = OnnxPolicy(onnx_policy)
    rng = np.random.default_rng(1)
    observations = rng.standard_normal((20, policy.spec.obs_dim)).astype(np.float32)
    expected = policy.session.run([policy.spec.output_name], {policy.spec.input_name: observations})[0]
    for obs, want in zip(observations, expected, strict=True):
        np.testing.assert_allclose(policy.act(obs), want, atol=1e-6)
    policy.session = _PublicSession(policy.session)
    policy._run = policy._bound_run()
    for obs, want in zip(observations[::-1], expected[::-1], strict=True):
        np.testing.assert_allclose(policy.act(obs), want, atol=1e-6)


def test_a_truncated_onnx_file_is_refused_with_a_clear_error(onnx_policy, tmp_path):
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(onnx_policy.read_bytes()[:500])
    with pytest.raises(ValueError, match=r"cut\.onnx: not a loadable ONNX model"):
        OnnxPolicy(bad)
    with pytest.raises(FileNotFoundError, match="policy file not found"):
        OnnxPolicy(tmp_path / "missing.onnx")


def _rewrite_metadata(src: Path, dst: Path, **changes) -> Path:
    model = onnx.load(src)
    prop = next(p for p in model.metadata_props if p.key == "robotrl.policy")
    meta = {**json.loads(prop.value), **changes}
    prop.value = json.dumps(meta)
    onnx.save(model, dst)
    return dst


def test_a_file_whose_metadata_disagrees_with_its_graph_is_refused(onnx_policy, tmp_path):
    bad = _rewrite_metadata(onnx_policy, tmp_path / "sizes.onnx", obs_dim=9,
                            obs_fields=[["cos_q", 2], ["sin_q", 2], ["qvel", 2], ["fingertip_to_target", 3]])
    with pytest.raises(ValueError, match="graph maps 8 -> 2 values, metadata says 9 -> 2"):
        OnnxPolicy(bad)
    newer = _rewrite_metadata(onnx_policy, tmp_path / "v3.onnx", format_version=3)
    with pytest.raises(ValueError, match="format_version 3, this runner reads 1 and 2"):
        OnnxPolicy(newer)


@pytest.mark.parametrize("fields", [[8], [["cos_q", 2.5]], [["cos_q"]], [["cos_q", -2]]])
def test_a_malformed_obs_fields_entry_is_refused_naming_the_file_and_key(onnx_policy, tmp_path, fields):
    bad = _rewrite_metadata(onnx_policy, tmp_path / "fields.onnx", obs_fields=fields)
    with pytest.raises(ValueError, match=r"fields\.onnx: metadata obs_fields: expected \[name, size\]"):
        OnnxPolicy(bad)


@pytest.mark.parametrize("spec, message", [
    (RobotSpec(7, 2, REACHER.action_low, REACHER.action_high), "policy expects 8 observations, robot sends 7"),
    (RobotSpec(8, 3, np.zeros(3), np.ones(3)), "policy outputs 2 actions, robot takes 3"),
    (RobotSpec(8, 2, np.array([-2, -2]), np.array([2, 2])), "action_low"),
])
def test_a_robot_with_other_sizes_or_bounds_is_refused(onnx_policy, spec, message):
    with pytest.raises(ValueError, match=message):
        Runner(OnnxPolicy(onnx_policy), ScriptedBackend([], spec), LoopConfig(rate_hz=50, duration_s=1))


def test_cuda_without_the_gpu_build_names_what_is_missing():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has onnxruntime-gpu")
    with pytest.raises(RuntimeError, match=r"no CUDAExecutionProvider.*pip uninstall -y onnxruntime && "
                                           r"pip install onnxruntime-gpu"):
        resolve_provider("cuda")


# ---- UDP ----------------------------------------------------------------------------------------------

def test_protocol_round_trip_and_rejections():
    data = protocol.encode(protocol.OBS, 7, 123, np.arange(8))
    assert len(data) == 24 + 32
    p = protocol.decode(data, protocol.OBS, 8)
    assert (p.seq, p.stamp_ns) == (7, 123) and p.values.tolist() == list(range(8))
    with pytest.raises(ValueError, match="header says 8 values"):
        protocol.decode(data[:-4])
    with pytest.raises(ValueError, match="bad magic"):
        protocol.decode(b"XXXX" + data[4:])
    with pytest.raises(ValueError, match="expected ACTION"):
        protocol.decode(data, protocol.ACTION)


def test_udp_lock_step_sends_the_policys_action_for_each_observation(onnx_policy):
    robot = LinearRobot()
    peer = UdpPeer(robot)
    thread = peer.start()
    policy = OnnxPolicy(onnx_policy)
    s = Runner(policy, UdpBackend("127.0.0.1", peer.port), LoopConfig(rate_hz=100, duration_s=0.5),
               SafetyConfig(safe_action="zero", watchdog_s=1.0), NO_START).run()
    thread.join(timeout=5)  # the peer ends on the runner's BYE, after the safe action
    assert not thread.is_alive()
    peer.close()
    assert s["robot"]["received"] >= 20 and s["robot"]["bad_size"] == 0
    # Replay: each command is the policy's action on the observation the robot sent before it, or, when
    # that observation came late (a loaded machine), a repeat of the previous command.
    # On a loaded machine the handshake's observation can wait in the socket past the watchdog while the
    # runner sets up: it is counted stale and the runner stays passive (zero torque) until a fresh one.
    obs = np.linspace(-0.5, 0.5, 8).astype(np.float32)
    previous, fresh, passive = None, 0, 0
    for sent in robot.applied[:-1]:  # the last one is the safe action at exit
        expected = policy.act_batch(obs[None])[0]
        if np.allclose(sent, expected, atol=1e-6):
            fresh += 1
        elif previous is None and not np.any(sent):
            passive += 1
            obs = np.zeros(8, dtype=np.float32)  # the robot's answer to a zero command
            continue
        else:
            assert previous is not None and np.array_equal(sent, previous), (sent, expected, previous)
        previous = sent
        obs = 0.5 * np.tile(sent, 4).astype(np.float32)
    assert fresh >= 20
    assert passive == 0 or s["safe_actions"]["stale_observation"] >= 1, s["safe_actions"]
    np.testing.assert_array_equal(robot.applied[-1], [0.0, 0.0])


class FaultyPeer:
    """A hand-written robot end: answers the handshake, then sends what the test scripts."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.port = self.sock.getsockname()[1]
        self.addr = None
        self.received = []
        threading.Thread(target=self._handshake, daemon=True).start()

    def _handshake(self):
        data, self.addr = self.sock.recvfrom(2048)
        assert protocol.decode(data).kind == protocol.HELLO
        self.sock.sendto(protocol.encode(protocol.SPEC, 0, 0, protocol.spec_values(8, 2, [-1, -1], [1, 1])),
                         self.addr)

    def send(self, seq, values):
        self.sock.sendto(protocol.encode(protocol.OBS, seq, now_ns(), values), self.addr)

    def close(self):
        self.sock.close()


def test_the_warm_up_after_each_sleep_changes_no_state_and_sends_nothing(onnx_policy):
    peer = FaultyPeer()
    backend = UdpBackend("127.0.0.1", peer.port)
    runner = Runner(OnnxPolicy(onnx_policy), backend, LoopConfig(rate_hz=100, duration_s=1),
                    SafetyConfig(safe_action="zero", watchdog_s=1.0), NO_START)
    try:
        safety = runner.safety
        command = safety.filter(np.array([0.25, -3.0], np.float32)).copy()
        runner.policy.act(np.full(8, np.nan, np.float32))  # the warm-up reruns a NaN input and action
        runner.warm()
        runner.policy.act(np.full(8, 0.5, np.float32))
        runner.warm()
        np.testing.assert_array_equal(safety.last, command)
        assert safety.has_last and safety.total == 0 and not any(safety.counts.values())
        assert backend.counts["sent"] == 0
        peer.sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            peer.sock.recvfrom(2048)
        backend.write(safety.last)
        packet = protocol.decode(peer.sock.recvfrom(2048)[0], protocol.ACTION, 2)
        np.testing.assert_array_equal(packet.values, command)
    finally:
        backend.close()
        peer.close()


class _RecordingSocket:
    """A socket whose sends and receives are listed (the test's view of what the backend's warm-up does)."""

    def __init__(self, sock):
        self.sock, self.calls = sock, []

    def sendto(self, data, address):
        self.calls.append(("sendto", bytes(data), address))
        return self.sock.sendto(data, address)

    def recvmsg_into(self, buffers, ancsize):
        result = self.sock.recvmsg_into(buffers, ancsize)
        self.calls.append(("recvmsg_into", result[0]))
        return result


def test_the_udp_warm_up_passes_one_datagram_through_its_own_loopback_socket_and_none_to_the_robot():
    peer = FaultyPeer()
    backend = UdpBackend("127.0.0.1", peer.port)
    echo = backend._echo
    try:
        assert echo is not None and echo.getpeername() == echo.getsockname()
        assert echo.getsockname()[0] == "127.0.0.1" and echo.getsockname() != backend.sock.getsockname()
        recording = _RecordingSocket(echo)
        backend._echo = recording
        backend.warm_io()
        backend.warm_io()
        size = protocol.HEADER.size + 4 * 2
        assert [c[0] for c in recording.calls] == ["sendto", "recvmsg_into"] * 2
        assert all(c[2] == echo.getsockname() for c in recording.calls if c[0] == "sendto")
        assert all(c[1] == size for c in recording.calls if c[0] == "recvmsg_into")
        with pytest.raises(BlockingIOError):  # each warm-up takes back the datagram it sent
            echo.recv(2048)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.sendto(b"x" * 8, echo.getsockname())  # connected to itself: nothing from elsewhere gets in
        stranger.close()
        time.sleep(0.01)
        with pytest.raises(BlockingIOError):
            echo.recv(2048)
        assert backend.counts["sent"] == 0 and backend.counts["received"] == 0
        peer.sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            peer.sock.recvfrom(2048)
    finally:
        backend._echo = echo
        backend.close()
        peer.close()
    assert echo.fileno() == -1


def test_wrong_size_and_out_of_order_datagrams_are_dropped_and_counted():
    peer = FaultyPeer()
    backend = UdpBackend("127.0.0.1", peer.port)
    try:
        peer.send(5, np.full(8, 0.5))
        peer.send(6, np.full(7, 0.5))               # one value short
        peer.sock.sendto(b"garbage!" * 6, peer.addr)  # wrong magic, wrong size
        peer.send(4, np.full(8, 0.9))               # older than 5
        time.sleep(0.05)
        reading = backend.read()
        np.testing.assert_array_equal(reading.obs, np.full(8, 0.5, np.float32))
        assert backend.last_seq == 5
        assert backend.counts["bad_size"] == 1 and backend.counts["bad_header"] == 1  # short; wrong magic
        assert backend.counts["out_of_order"] == 1
        peer.send(5, np.full(8, 0.7))               # a repeat of 5
        peer.send(9, np.full(8, 0.2))               # a gap is fine: newer wins
        time.sleep(0.05)
        np.testing.assert_array_equal(backend.read().obs, np.full(8, 0.2, np.float32))
        assert backend.counts["out_of_order"] == 2
        assert backend.read() is None
    finally:
        backend.close()
        peer.close()


def test_a_stalled_peer_trips_the_watchdog_and_the_loop_keeps_its_rate(onnx_policy):
    peer = FaultyPeer()
    backend = UdpBackend("127.0.0.1", peer.port)
    runner = Runner(OnnxPolicy(onnx_policy), backend, LoopConfig(rate_hz=100, duration_s=0.3),
                    SafetyConfig(safe_action="zero", watchdog_s=0.03))
    # The peer sends one observation as the loop starts and then nothing: 30 ms later every tick is stale.
    threading.Timer(0.01, peer.send, (1, np.zeros(8))).start()
    s = runner.run()
    peer.close()
    assert s["ticks"] + s["skipped"] == 30 and s["stopped_by"] == "duration"
    assert s["safe_actions"]["stale_observation"] >= 20


def test_no_robot_at_the_address_is_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(BackendError, match=f"no SPEC reply from the robot at 127.0.0.1:{port} within 0.3 s; "
                                               r"nothing heard \(is its peer running\?\)"):
            UdpBackend("127.0.0.1", port, handshake_s=0.3)


@pytest.mark.parametrize("answer", ["from_another_port", "not_the_protocol"])
def test_a_handshake_that_hears_the_wrong_thing_says_what_it_heard(answer):
    """A robot answering from a separate send socket, or in another format, looked like silence."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as robot, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        robot.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        robot.settimeout(0.05)
        port, stop = robot.getsockname()[1], threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    _, sender = robot.recvfrom(2048)
                except TimeoutError:
                    continue
                if answer == "from_another_port":
                    other.sendto(b"anything", sender)
                else:
                    robot.sendto(b"GET / HTTP/1.1", sender)

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            if answer == "from_another_port":
                match = (rf"datagrams from other addresses \(first 127.0.0.1:{other.getsockname()[1]}: the robot "
                         r"must answer from the address it is reached at\)")
            else:
                match = r"datagrams that are not this protocol \(first: "
            with pytest.raises(BackendError, match=match):
                UdpBackend("127.0.0.1", port, handshake_s=0.3)
        finally:
            stop.set()
            thread.join()


# ---- the entry point -----------------------------------------------------------------------------------

def _deploy_cmd(*args):
    return [sys.executable, "-m", "deploy", *map(str, args)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_sends_the_safe_action_and_exits_cleanly(onnx_policy, tmp_path, sig):
    """SIGHUP as well: a deploy started over SSH gets it when the link drops."""
    robot = LinearRobot()
    peer = UdpPeer(robot)
    peer.start()
    proc = subprocess.Popen(_deploy_cmd(onnx_policy, "--backend", "udp", "--port", peer.port, "--rate", 100,
                                        "--duration", 30, "--safe-action", "zero", "--out", tmp_path, "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while peer.actions_received < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    peer.stop()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped_by"] == sig.name
    assert 20 <= summary["ticks"] < 3000
    np.testing.assert_array_equal(peer.last_action, [0.0, 0.0])
    ticks = np.load(tmp_path / "ticks.npz")
    assert len(ticks["lateness_us"]) == summary["ticks"]
    assert json.loads((tmp_path / "summary.json").read_text())["ticks"] == summary["ticks"]


@pytest.mark.parametrize("program", ["deploy", "robotrl deploy"])
def test_a_run_a_fault_ended_exits_non_zero_after_writing_its_records(onnx_policy, tmp_path, program):
    """A supervisor (systemd, a script) sees the fault in the exit status; the summary still says what ran."""
    peer = UdpPeer(LinearRobot())
    peer.start()
    command = _deploy_cmd if program == "deploy" else (
        lambda *args: [sys.executable, "-m", "robotrl.cli", "deploy", *map(str, args)])
    # A 20 us period: the first tick's inference and UDP round trip overrun it, and --overrun stop ends the run.
    proc = subprocess.run(command(onnx_policy, "--backend", "udp", "--port", peer.port, "--rate", 50_000,
                                      "--duration", 5, "--overrun", "stop", "--spin-us", 0, "--passive-s", 0,
                                      "--ramp-s", 0, "--out", tmp_path, "--json"),
                          capture_output=True, text=True, timeout=60)
    peer.stop()
    assert proc.returncode == 1 and proc.stdout, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["stopped_by"] == "overrun" and summary["ticks"] >= 1
    assert proc.stderr.strip().splitlines()[-1] == f"{program}: error: stopped early by a fault: overrun"
    assert json.loads((tmp_path / "summary.json").read_text())["ticks"] == summary["ticks"]


def test_a_real_time_priority_without_permission_is_refused_before_the_robot_is_contacted(
        onnx_policy, tmp_path, monkeypatch, capsys):
    def not_permitted(*_args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", not_permitted)  # as for a user without CAP_SYS_NICE
    peer = UdpPeer(LinearRobot())
    peer.start()
    try:
        rc = deploy_main([str(onnx_policy), "--backend", "udp", "--port", str(peer.port), "--rt-priority", "10",
                          "--duration", "1", "--out", str(tmp_path / "out")])
    finally:
        peer.stop()
    assert rc == 1
    assert capsys.readouterr().err.strip().startswith("deploy: error: --rt-priority: not permitted")
    assert peer.first_sent_ns is None and peer.actions_received == 0  # no handshake, no command
    assert not (tmp_path / "out").exists()


def test_a_mistyped_policy_path_leaves_no_output_folder(tmp_path, capsys):
    rc = deploy_main([str(tmp_path / "typo" / "policy.onnx"), "--backend", "udp", "--port", "9"])
    assert rc == 1 and "not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_python_m_deploy_sim_points_to_the_train_extra(onnx_policy):
    r = subprocess.run(_deploy_cmd(onnx_policy, "--backend", "sim"), capture_output=True, text=True,
                       env={**os.environ}, timeout=60)
    assert r.returncode == 1
    assert "robotrl deploy --backend sim" in r.stderr and "robotrl[train]" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_rt_priority_runs_the_block_under_sched_fifo_and_restores_the_scheduler():
    from deploy.realtime import realtime

    before = os.sched_getscheduler(0)
    with pytest.raises(ValueError, match=r"expected 1\.\.99"), realtime(0):
        pass
    try:
        with realtime(10):
            assert os.sched_getscheduler(0) == os.SCHED_FIFO
            assert os.sched_getparam(0).sched_priority == 10
    except PermissionError as exc:
        assert "CAP_SYS_NICE" in str(exc)
    assert os.sched_getscheduler(0) == before


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="no /proc/stat on this OS")
def test_the_loop_report_gives_the_host_steal_and_the_run_delay():
    report = {}
    with measured(report):
        time.sleep(0.05)
    assert report["steal_cpus"] == sorted(os.sched_getaffinity(0))
    assert report["steal_ms"] >= 0 and report["run_delay_ms"] >= 0
    one = min(os.sched_getaffinity(0))
    assert 0 <= steal_ticks({one}) <= steal_ticks()


def test_importing_deploy_loads_no_training_stack():
    code = ("import sys, deploy.cli, deploy.runner, deploy.backends.udp, deploy.backends.sim, deploy.peer; "
            "print(sorted(m for m in ('torch', 'gymnasium', 'mujoco', 'robotrl', 'envs', 'policies', 'onnx', 'yaml') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_a_cuda_session_that_falls_back_to_the_cpu_is_refused(onnx_policy, monkeypatch):
    """onnxruntime-gpu lists CUDA whenever it is installed and falls back to the CPU when its libraries do
    not load; this CPU build does the same with a CUDA request, which is the case checked here."""
    import deploy.policy as deploy_policy

    monkeypatch.setattr(deploy_policy.ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(RuntimeError, match=r"--provider cuda: ONNX Runtime could not start CUDAExecutionProvider "
                                           r"for .* and fell back to CPUExecutionProvider"):
        deploy_policy.OnnxPolicy(onnx_policy, "cuda")
