"""The `robotrl` command line. Heavy imports happen inside each command, so that a controller with
only the base install can still run `robotrl deploy`, and a missing extra is a one-line message."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

TRAIN_EXTRA_HINT = "this command needs the training stack: pip install 'robotrl[train]'"


class CLIError(Exception):
    """An error to show as one line on stderr."""


def _require_train_stack() -> None:
    missing = []
    for mod in ("torch", "mujoco", "gymnasium", "yaml"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise CLIError(f"{TRAIN_EXTRA_HINT} (missing: {', '.join(missing)})")


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload) if getattr(args, "json", False) else text)


def cmd_envs(args: argparse.Namespace) -> None:
    _require_train_stack()
    import envs as robot_envs

    rows = []
    for name, task_cls in robot_envs.TASKS.items():
        env = robot_envs.make(f"robotrl/{name}")
        rows.append({"id": f"robotrl/{name}", "obs_dim": int(env.observation_space.shape[0]),
                     "act_dim": int(env.action_space.shape[0]),
                     "control_hz": round(1.0 / env.unwrapped.task.control_dt, 3),
                     "max_episode_steps": task_cls.max_episode_steps})
        env.close()
    for env_id in robot_envs.MULTI_IDS:
        batch = robot_envs.make_multi_batch(env_id, 1)
        rows.append({"id": env_id, "obs_dim": batch.obs_dim, "act_dim": batch.act_dim,
                     "control_hz": round(1.0 / batch.task.control_dt, 3),
                     "max_episode_steps": batch.max_episode_steps, "agents": batch.num_agents})
        batch.close()
    text = "\n".join(f"{r['id']:<24} obs {r['obs_dim']:>3}  act {r['act_dim']:>2}  {r['control_hz']:g} Hz  "
                     f"{r['max_episode_steps']} steps/episode"
                     + (f", {r['agents']} robots (sizes per robot)" if "agents" in r else "") for r in rows)
    text += "\nand any Gymnasium MuJoCo id (InvertedPendulum-v5, HalfCheetah-v5, Hopper-v5, ...)"
    text += "\nand MaMuJoCo's multi-agent robots as mamujoco/<Robot>-<split> (mamujoco/HalfCheetah-2x3, ...)"
    _emit(args, {"envs": rows}, text)


def _find_latest_run(name: str, seed: int, root: Path = Path("runs")) -> Path:
    runs = sorted(p for p in root.glob(f"{name}-{seed}-*") if (p / "checkpoints" / "latest.pt").exists())
    if not runs:
        raise CLIError(f"--resume: no run of {name} with seed {seed} under {root}/ has a checkpoint "
                       "(pass --run-dir)")
    return runs[-1]


def cmd_train(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.config import load_config
    from robotrl.train.trainer import Trainer, new_run_dir

    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.total_steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    cfg = load_config(args.config, overrides)
    if args.resume:
        run_dir = Path(args.run_dir) if args.run_dir else _find_latest_run(cfg.name, cfg.seed)
        saved = run_dir / "config.yaml"
        if saved.exists():
            # The run's own resolved config wins; only the budget and device may change on resume.
            keep = [o for o in overrides if o.split("=")[0] in ("train.total_steps", "train.device")]
            cfg = load_config(saved, keep)
    else:
        run_dir = Path(args.run_dir) if args.run_dir else new_run_dir(cfg)
    print(f"run folder: {run_dir}", file=sys.stderr)
    result = Trainer(cfg, run_dir, resume=args.resume, show_progress=not args.no_progress).run()
    ev = result.eval
    success = "" if ev["success_rate"] is None else f", success {ev['success_rate']:.2f}"
    _emit(args, {"run_dir": str(run_dir), "steps": result.steps, "wall_s": result.wall_s, "eval": ev},
          f"run folder: {run_dir}\n{result.steps} steps in {result.wall_s:.0f} s; evaluation over "
          f"{ev['episodes']} episodes: return {ev['return_mean']:.2f} ± {ev['return_std']:.2f}{success}")


def cmd_eval(args: argparse.Namespace) -> None:
    if args.sim_to_sim:
        _require_train_stack()
        from robotrl.tools.sim_to_sim import format_sim_to_sim, sim_to_sim_of

        report = sim_to_sim_of(args.path, 20 if args.episodes is None else args.episodes, args.seed)
        _emit(args, report, format_sim_to_sim(report))
        return
    if args.viewer and args.video:
        raise CLIError("--viewer and --video: choose one")
    if args.video and Path(args.video).suffix.lower() != ".mp4":
        raise CLIError(f"--video {args.video}: the file name must end in .mp4")
    width, height = _parse_size(args.size)
    # MuJoCo picks its OpenGL once, at import: a window for the viewer, EGL/OSMesa for videos.
    from robotrl.tools import gl

    if args.viewer:
        gl.use_window()
    elif args.video:
        gl.use_offscreen()
    onnx_policy = None
    if args.path.endswith(".onnx"):
        from deploy.policy import OnnxPolicy

        onnx_policy = OnnxPolicy(args.path)
        if onnx_policy.spec.pixels and not args.viewer:
            gl.use_offscreen()  # its observations are renders: known before MuJoCo is imported
    _require_train_stack()
    import torch

    from robotrl.config import override_env_kwargs
    from robotrl.core.threads import limit_threads

    limit_threads(1)
    overrides = list(args.set or [])
    override_env_kwargs({}, overrides)  # a mistyped --set fails before a checkpoint (and its replay) loads
    if onnx_policy is not None:
        # The file knows how its observations are rendered; the run's other env kwargs are not in it.
        act, env_id = onnx_policy.act_batch, onnx_policy.spec.env_id
        env_kwargs = override_env_kwargs(onnx_policy.spec.env_kwargs(), overrides)
        policy = cfg = None
    else:
        from robotrl.train.trainer import evaluate_policy, load_policy, policy_fn

        policy, cfg, _ = load_policy(args.path)
        env_kwargs = override_env_kwargs(cfg.env.kwargs, overrides)
        cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, kwargs=env_kwargs))
        act, env_id = policy_fn(policy, torch.device("cpu")), cfg.env.id
    episodes = (3 if args.video else 10) if args.episodes is None else args.episodes
    if args.viewer:
        from robotrl.tools.viewer import run_viewer

        result = run_viewer(act, env_id, episodes, seed=args.seed, env_kwargs=env_kwargs)
    elif args.video:
        from robotrl.tools.video import record_video

        result = record_video(act, env_id, args.video, episodes, seed=args.seed,
                              env_kwargs=env_kwargs, width=width, height=height)
    elif cfg is not None:
        # The agent's own evaluation where it has one (multi-robot runs evaluate the team).
        result = evaluate_policy(policy, cfg, episodes, args.seed, torch.device("cpu"))
    else:
        from robotrl.train.evaluate import evaluate

        result = evaluate(act, env_id, episodes, seed=args.seed, env_kwargs=env_kwargs)
    success = "" if result.get("success_rate") is None else f", success rate {result['success_rate']:.2f}"
    changed = f" with {', '.join(overrides)}" if overrides else ""
    text = (f"{env_id}{changed}: {result['episodes']} episodes, return {result['return_mean']:.2f} "
            f"± {result['return_std']:.2f}, length {result['length_mean']:.0f}{success}")
    if args.video:
        text += (f"\nvideo: {result['video']} ({result['frames']} frames at {result['fps']:g} fps, "
                 f"rendered in {result['wall_s']:.1f} s)")
    _emit(args, result, text)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CLIError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 480x480") from None
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise CLIError(f"--size {text}: width and height must be positive and even (H.264 4:2:0)")
    return width, height


def cmd_plot(args: argparse.Namespace) -> None:
    if not (Path(args.run_dir) / "metrics.csv").is_file():
        raise CLIError(f"{args.run_dir}: no metrics.csv (expected a run folder written by robotrl train)")
    from robotrl.train.plots import plot_run

    paths = [str(p) for p in plot_run(Path(args.run_dir))]
    _emit(args, {"plots": paths}, "\n".join(paths))


def _require_sb3() -> None:
    try:
        __import__("stable_baselines3")
    except ImportError as exc:
        raise CLIError("this command needs stable-baselines3: pip install 'robotrl[sb3]'") from exc


def _compare_text(report: dict[str, Any]) -> str:
    lines = [f"{report['algo']} on {report['env']}, {report['steps']} steps, seeds {report['seeds']}"]
    for side in ("ours", "sb3"):
        if side in report:
            b = report[side]
            lines.append(f"{side:>4}: return {b['mean']:.2f}, 95% CI [{b['ci95'][0]:.2f}, {b['ci95'][1]:.2f}], "
                         f"{b['steps_per_s']:.0f} steps/s, wall {b['wall_s']:.0f} s; per seed "
                         + ", ".join(f"{r:.2f}" for r in b["returns"]))
    lines.append(f"plot: {report['plot']}")
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> None:
    _require_train_stack()
    _require_sb3()
    from datetime import datetime

    from robotrl.config import load_config
    from robotrl.sb3.compare import compare

    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.total_steps={args.steps}")
    cfg = load_config(args.config, overrides)
    if args.seeds < 1:
        raise CLIError(f"--seeds: expected at least 1, got {args.seeds}")
    out = Path(args.out) if args.out else Path("runs") / "compare" / (
        f"{cfg.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    print(f"comparison folder: {out}", file=sys.stderr)
    report = compare(cfg, args.seeds, out)
    if args.save_baseline:
        from robotrl.sb3.baselines import write_baseline

        command = f"robotrl compare {args.config} --seeds {args.seeds}" + (
            f" --steps {args.steps}" if args.steps is not None else "") + " --save-baseline"
        report["baseline"] = str(write_baseline(report, args.config, command))
    _emit(args, report, _compare_text(report))


def cmd_baselines(args: argparse.Namespace) -> None:
    """Regenerate the stored SB3 baselines: SB3 alone on each config, at the config's own budget."""
    _require_train_stack()
    _require_sb3()
    from robotrl.config import load_config
    from robotrl.sb3.baselines import write_baseline
    from robotrl.sb3.compare import compare

    written = []
    for config in args.configs:
        cfg = load_config(config)
        report = compare(cfg, args.seeds, Path("runs") / "baselines" / cfg.name, sides=("sb3",))
        command = f"robotrl baselines {config} --seeds {args.seeds}"
        written.append(str(write_baseline(report, config, command)))
        print(f"{written[-1]}: SB3 {report['sb3']['mean']:.2f} {report['sb3']['ci95']}", file=sys.stderr)
    _emit(args, {"written": written}, "\n".join(written))


def cmd_bench_train(args: argparse.Namespace) -> None:
    _require_train_stack()
    _require_sb3()
    from robotrl.config import load_config
    from robotrl.sb3.bench import bench_train

    cfg = load_config(args.config, list(args.set or []))
    result = bench_train(cfg, args.steps, args.rounds)
    _emit(args, result, f"{result['algo']} on {result['env']} ({result['num_envs']} envs, {result['steps']} steps x "
          f"{result['rounds']} rounds per side): ours {result['ours_steps_per_s']:.0f} steps/s, SB3 "
          f"{result['sb3_steps_per_s']:.0f} steps/s ({result['speedup']:.2f}x; per CPU second "
          f"{result['speedup_cpu']:.2f}x)")


def cmd_export(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.export.policy import export_policy

    if _is_team_run(args.path):
        from robotrl.export.team import export_team

        if args.quantize:
            raise CLIError("--quantize: not available for a multi-robot run")
        report = export_team(args.path, args.out)
        _emit(args, report, f"wrote {', '.join(report['files'])}; ONNX Runtime vs torch on "
              f"{report['observations_checked']} observations: max |diff| {report['parity_max_abs']:.2e}")
        return
    report = export_policy(args.path, args.out, args.quantize, env_id=args.env)
    text = (f"wrote {report['out']} ({report['bytes']} bytes); ONNX Runtime vs torch on "
            f"{report['observations_checked']} observations: max |diff| {report['parity_max_abs']:.2e}")
    if "int8_eval" in report:
        q, f = report["int8_eval"], report["fp32_eval"]
        text += (f"\nint8 action error max {report['int8_action_error']['max']:.4f} mean "
                 f"{report['int8_action_error']['mean']:.4f}; return over {q['episodes']} episodes: int8 "
                 f"{q['return_mean']:.2f}, fp32 {f['return_mean']:.2f}")
    _emit(args, report, text)


def _is_team_run(path: str) -> bool:
    """A run folder or checkpoint of a multi-robot env (exported as one ONNX actor per robot)."""
    if Path(path).suffix in (".zip", ".onnx"):
        return False
    import envs as robot_envs
    from robotrl.train.trainer import load_run

    cfg, _, _ = load_run(path)
    return robot_envs.is_multi(cfg.env.id)


def _team_of(policy: str) -> dict[str, Any] | None:
    """The description of an exported policy that is one robot of a team, else None."""
    import onnxruntime as ort

    from deploy.metadata import METADATA_KEY

    if not Path(policy).is_file():
        return None
    raw = ort.InferenceSession(policy, providers=["CPUExecutionProvider"]).get_modelmeta() \
        .custom_metadata_map.get(METADATA_KEY)
    data = json.loads(raw) if raw else {}
    return data if "team_files" in data else None


def cmd_deploy(args: argparse.Namespace) -> None:
    from deploy.cli import format_summary, run_deploy

    team = _team_of(args.policy)
    if team is not None:
        _require_train_stack()
        from robotrl.export.team import deploy_team, format_team

        summary, out_dir = deploy_team(args, team)
        print(f"per-robot tick records: {out_dir}", file=sys.stderr)
        _emit(args, summary, format_team(summary))
        return
    make_env = None
    if args.backend == "sim":
        _require_train_stack()
        import envs as robot_envs

        make_env = robot_envs.make
    summary, out_dir = run_deploy(args, make_env)
    try:
        from robotrl.tools.deploy_plots import plot_deploy

        plot_deploy(out_dir)
    except ImportError:
        pass  # plots need matplotlib (the train extra); the numbers are in summary.json either way
    print(f"per-tick records and plots: {out_dir}", file=sys.stderr)
    _emit(args, summary, format_summary(summary))


def cmd_bench_deploy(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.tools.bench_deploy import bench_from_args, format_bench

    result = bench_from_args(args)
    _emit(args, result, format_bench(result))


def cmd_bench_envs(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.core.threads import limit_threads
    from robotrl.tools.bench_envs import bench_all

    limit_threads(1)
    rows = bench_all(args.num_envs, args.steps, args.env, args.repeats)
    text = "\n".join(f"{r['env']:<24} {r['impl']:<15} {r['num_envs']:>3} envs  {r['steps_per_s']:>12,.0f} steps/s"
                     for r in rows)
    _emit(args, {"results": rows}, text)


def cmd_robot(args: argparse.Namespace) -> None:
    if args.action == "show":
        # MuJoCo picks its OpenGL once, at import: a window for the viewer, EGL/OSMesa for videos.
        from robotrl.tools import gl

        gl.use_offscreen() if args.video else gl.use_window()
    _require_train_stack()
    from robotrl.tools import robot

    if args.action == "check":
        report = robot.check(args.file)
        _emit(args, report, robot.check_text(report))
        return
    if args.video and Path(args.video).suffix.lower() != ".mp4":
        raise CLIError(f"--video {args.video}: the file name must end in .mp4")
    width, height = _parse_size(args.size)
    result = robot.show(args.file, args.video, args.seconds, width, height)
    _emit(args, result, f"video: {result['video']} ({result['frames']} frames)" if args.video
          else f"shown for {result['wall_s']:.1f} s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robotrl", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("envs", help="list registered environments")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("train", help="train from a YAML run config")
    p.add_argument("config", help="YAML run config (launch/*.yaml)")
    p.add_argument("--steps", type=int, help="total environment steps")
    p.add_argument("--seed", type=int)
    p.add_argument("--run-dir", help="run folder (default runs/<config>-<seed>-<timestamp>)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"])
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a run folder or checkpoint deterministically, watch it, film it")
    p.add_argument("path", help="run folder, checkpoint (.pt) or exported policy (.onnx)")
    p.add_argument("--episodes", type=int, help="episodes to run (default 10; 3 with --video)")
    p.add_argument("--viewer", action="store_true", help="watch in MuJoCo's viewer in real time ([space] pauses)")
    p.add_argument("--video", metavar="FILE.mp4", help="render the episodes offscreen into an MP4")
    p.add_argument("--size", default="480x480", help="video frame size WIDTHxHEIGHT (default 480x480)")
    p.add_argument("--sim-to-sim", action="store_true",
                   help="nominal vs perturbed robot side by side (masses, friction, motor strength, half the "
                        "timestep, RK4, one step of observation latency); default 20 episodes")
    p.add_argument("--seed", type=int, default=123_456)
    p.add_argument("--set", action="append", metavar="env.kwargs.KEY=VALUE",
                   help="override an env kwarg of the run for this evaluation (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="train ours and stable-baselines3 on one config; returns with 95%% CI")
    p.add_argument("config", help="YAML run config (launch/*.yaml)")
    p.add_argument("--seeds", type=int, default=3, help="seeds config.seed .. config.seed+K-1 (default 3)")
    p.add_argument("--steps", type=int, help="total environment steps per run")
    p.add_argument("--out", help="output folder (default runs/compare/<config>-<timestamp>; reruns resume)")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value")
    p.add_argument("--save-baseline", action="store_true",
                   help="also store SB3's side as tests/baselines/sb3/<env>__<algo>.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("baselines", help="regenerate the stored SB3 baselines of the regression tier")
    p.add_argument("configs", nargs="+", help="configs to train SB3 on, at each config's budget")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("export", help="export a policy to one self-describing ONNX file, checked against torch")
    p.add_argument("path", help="run folder, checkpoint (.pt) or SB3 PPO/A2C model (.zip)")
    p.add_argument("--out", help="output .onnx (default: policy.onnx in the run folder)")
    p.add_argument("--quantize", choices=["int8"], help="int8 weights; reports action error and returns")
    p.add_argument("--env", help="env id (required for an SB3 .zip, which does not record it)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    from deploy.cli import add_arguments as add_deploy_arguments

    p = sub.add_parser("deploy", help="run an exported policy at a fixed rate on a sim or UDP robot")
    add_deploy_arguments(p)
    p.set_defaults(func=cmd_deploy)

    bench = sub.add_parser("bench", help="measure a part of the stack (envs, deploy)")
    targets = bench.add_subparsers(dest="target", required=True)

    p = targets.add_parser("envs", help="simulation speed per robot: batched vs gymnasium-sync vs physics limit")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=2000, help="vector steps timed per batched run")
    p.add_argument("--env", action="append", help="only this robotrl id (repeatable); default: every robot")
    p.add_argument("--repeats", type=int, default=3, help="timings per row; the fastest is reported")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_envs)

    p = targets.add_parser("deploy", help="the control loop at a fixed rate over UDP, beside a bare-scheduler floor")
    from robotrl.tools.bench_deploy import add_bench_arguments

    add_bench_arguments(p)
    p.set_defaults(func=cmd_bench_deploy)

    p = targets.add_parser("train", help="training steps/s of ours vs stable-baselines3 on one config")
    p.add_argument("config", nargs="?", default="launch/half_cheetah_ppo.yaml",
                   help="the config both sides train (default launch/half_cheetah_ppo.yaml)")
    p.add_argument("--steps", type=int, default=50_000, help="environment steps per side per round")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds per side")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_train)

    robot_parser = sub.add_parser("robot", help="check a robot description against its MJCF, or show it")
    robot_actions = robot_parser.add_subparsers(dest="action", required=True)
    p = robot_actions.add_parser("check", help="names, limits, mass, and holding the default pose for 2 s")
    p.add_argument("file", help="robot description YAML, or a shipped robot's name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_robot)
    p = robot_actions.add_parser("show", help="the robot in its default pose, in the viewer or a video")
    p.add_argument("file", help="robot description YAML, or a shipped robot's name")
    p.add_argument("--video", metavar="FILE.mp4", help="render offscreen into an MP4 instead of the viewer")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to show it (default 5)")
    p.add_argument("--size", default="640x480", help="video frame size WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_robot)

    p = sub.add_parser("plot", help="(re)draw a run folder's plots: curve.png, losses.png")
    p.add_argument("run_dir", help="run folder (also while it trains)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("robotrl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"robotrl {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
