"""The `robotrl` command line. Heavy imports happen inside each command, so that a controller with
only the base install can still run `robotrl deploy`, and a missing extra is a one-line message."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from deploy.cli import error_line
from robotrl.train.stop import TrainingStopped

TRAIN_EXTRA_HINT = "this command needs the training stack: pip install 'robotrl[train]'"


class CLIError(Exception):
    """An error to show as one line on stderr."""


def _require_train_stack() -> None:
    # Found, not imported: MuJoCo reads MUJOCO_GL once, at import, and a command picks it afterwards.
    missing = [mod for mod in ("torch", "mujoco", "gymnasium", "yaml") if importlib.util.find_spec(mod) is None]
    if missing:
        raise CLIError(f"{TRAIN_EXTRA_HINT} (missing: {', '.join(missing)})")


def _offscreen_for_configs(configs: list[str], overrides: list[str]) -> None:
    """An offscreen OpenGL where any of these configs renders its observations, chosen before MuJoCo loads."""
    from robotrl.tools import gl

    for config in configs:
        gl.offscreen_for(gl.config_env_kwargs(config, overrides))


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload) if getattr(args, "json", False) else text)


def cmd_envs(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.tools.env_list import format_env_list, list_envs

    rows = list_envs()
    _emit(args, {"envs": rows}, format_env_list(rows))


def cmd_train(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.config import load_config

    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.total_steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    _offscreen_for_configs([args.config], overrides)
    cfg = load_config(args.config, overrides)
    from robotrl.train.runs import format_train_report, latest_run, train_report
    from robotrl.train.trainer import Trainer, new_run_dir

    claimed = None  # a folder made here for a new run, removed again if the run cannot start
    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        run_dir = latest_run(cfg.name, cfg.seed) if args.resume else new_run_dir(cfg)
        claimed = None if args.resume else run_dir
    try:
        # The trainer refuses a folder that holds a run (without --resume) or a resume that changes the run.
        trainer = Trainer(cfg, run_dir, resume=args.resume, show_progress=not args.no_progress)
        print(f"run folder: {run_dir}", file=sys.stderr)
        report = train_report(trainer.run())
    except BaseException:
        if claimed is not None:
            with contextlib.suppress(OSError):
                claimed.rmdir()  # only while empty: a run that got going keeps its folder and checkpoints
        raise
    _emit(args, report, format_train_report(report))


def cmd_eval(args: argparse.Namespace) -> None:
    if args.sim_to_sim:
        # The sim-to-sim report runs its own two envs (the training kwargs and their perturbed copy).
        ignored = [flag for flag, given in (("--viewer", args.viewer), ("--video", args.video),
                                            ("--size", args.size is not None), ("--set", args.set)) if given]
        if ignored:
            raise CLIError(f"--sim-to-sim runs the training env and its perturbed copy as they are: "
                           f"{', '.join(ignored)} cannot go with it")
        if args.episodes is not None and args.episodes < 1:
            raise CLIError(f"--episodes: expected a positive number, got {args.episodes}")
        _require_train_stack()
        from robotrl.tools import gl

        onnx_policy = None
        if args.path.endswith(".onnx"):
            from deploy.policy import OnnxPolicy

            onnx_policy = OnnxPolicy(args.path)
        # A pixel policy's observations are renders: an offscreen OpenGL, chosen before MuJoCo loads.
        gl.offscreen_for(gl.run_env_kwargs(args.path) if onnx_policy is None else onnx_policy.spec.env_kwargs())
        from robotrl.tools.sim_to_sim import format_sim_to_sim, sim_to_sim_of

        report = sim_to_sim_of(args.path, 20 if args.episodes is None else args.episodes, args.seed, onnx_policy)
        _emit(args, report, format_sim_to_sim(report))
        return
    _require_train_stack()  # found, not imported: the OpenGL choice below still comes before MuJoCo
    from robotrl.tools.playback import format_playback, play, prepare

    request = prepare(args.path, args.episodes, args.viewer, args.video, args.size)  # before MuJoCo loads
    overrides = list(args.set or [])
    result, env_id = play(request, args.seed, overrides)
    _emit(args, result, format_playback(result, env_id, overrides))


def _parse_size(text: str) -> tuple[int, int]:
    from robotrl.tools.playback import parse_size

    return parse_size(text)


def cmd_seeds(args: argparse.Namespace) -> None:
    _require_train_stack()
    _offscreen_for_configs([args.config], list(args.set or []))
    from robotrl.train.seeds import format_rows, parse_seeds, run_seeds

    seeds = parse_seeds(args.seeds)
    command = " ".join(["robotrl seeds", args.config, "--seeds", args.seeds, "--episodes", str(args.episodes),
                        *(f"--set {s}" for s in args.set or [])])
    entry = run_seeds(args.config, seeds, args.episodes, Path(args.root), Path(args.docs), list(args.set or []),
                      command, show_progress=not args.no_progress)
    _emit(args, entry, format_rows(entry, seeds))


def cmd_plot(args: argparse.Namespace) -> None:
    if all(p.endswith(".json") for p in args.paths):
        _plot_reports(args)
        return
    if len(args.paths) != 1:
        raise CLIError(f"expected one run folder or comparison report files (.json), got {' '.join(args.paths)}")
    run_dir = args.paths[0]
    if not (Path(run_dir) / "metrics.csv").is_file():
        raise CLIError(f"{run_dir}: no metrics.csv (expected a run folder written by robotrl train)")
    from robotrl.train.plots import plot_run

    paths = [str(p) for p in plot_run(Path(run_dir))]
    _emit(args, {"plots": paths}, "\n".join(paths))


def _plot_reports(args: argparse.Namespace) -> None:
    """`robotrl compare` reports of one env overlaid (SAC's budget beside PPO's, say)."""
    if args.out is None:
        raise CLIError("--out: expected the PNG to write when plotting comparison reports")
    reports = []
    for path in args.paths:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CLIError(f"{path}: cannot read a comparison report ({exc})") from exc
        missing = [k for k in ("env", "algo", "steps", "seeds") if k not in report]
        if missing or not any(side in report for side in ("ours", "sb3")):
            raise CLIError(f"{path}: not a `robotrl compare` report.json (missing {', '.join(missing) or 'ours/sb3'})")
        reports.append(report)
    _require_train_stack()
    from robotrl.sb3.plot import plot_reports

    out, labels = plot_reports(reports, Path(args.out))
    _emit(args, {"plot": str(out), "curves": labels}, "\n".join([str(out), *labels]))


def _require_sb3() -> None:
    # Found, not imported, as for the training stack: the OpenGL choice comes after it.
    if importlib.util.find_spec("stable_baselines3") is None:
        raise CLIError("this command needs stable-baselines3: pip install 'robotrl[sb3]'")


def cmd_compare(args: argparse.Namespace) -> None:
    _require_train_stack()
    _require_sb3()
    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.total_steps={args.steps}")
    _offscreen_for_configs([args.config], overrides)  # robotrl.sb3 and the config load MuJoCo
    from robotrl.config import load_config
    from robotrl.sb3.compare import SIDES, check_comparable, compare, default_out, format_report

    cfg = load_config(args.config, overrides)
    sides = (args.side,) if args.side else SIDES
    if args.save_baseline and "sb3" not in sides:
        raise CLIError("--save-baseline stores SB3's side: it cannot go with --side ours")
    if args.save_baseline:
        from robotrl.sb3.baselines import check_baseline_seeds, check_baseline_slot

        check_baseline_seeds(args.seeds)
        if args.set:
            # A baseline names a shipped config, and the regression tier trains ours on that file as it is.
            raise CLIError(f"--save-baseline: a baseline is of {args.config} as written; --set {args.set[0]} would "
                           "store another config's interval under its name (edit the file, or compare without saving)")
        check_baseline_slot(cfg.env.id, cfg.algo, args.config)
    check_comparable(cfg, args.seeds, sides)  # an algorithm or option SB3 lacks is refused before anything trains
    out = Path(args.out) if args.out else default_out(cfg)
    print(f"comparison folder: {out}", file=sys.stderr)
    report = compare(cfg, args.seeds, out, sides)
    if args.save_baseline:
        from robotrl.sb3.baselines import compare_command, write_baseline

        command = compare_command(args.config, args.seeds, args.steps)
        report["baseline"] = str(write_baseline(report, args.config, command))
    _emit(args, report, format_report(report))


def cmd_baselines(args: argparse.Namespace) -> None:
    """Regenerate the stored SB3 baselines: SB3 alone on each config, at the config's own budget."""
    _require_train_stack()
    _require_sb3()
    _offscreen_for_configs(args.configs, [])
    from robotrl.sb3.baselines import regenerate

    written = []
    for path, report in regenerate(args.configs, args.seeds):
        written.append(str(path))
        print(f"{path}: SB3 {report['sb3']['mean']:.2f} {report['sb3']['ci95']}", file=sys.stderr)
    _emit(args, {"written": written}, "\n".join(written))


def cmd_bench_train(args: argparse.Namespace) -> None:
    _require_train_stack()
    _require_sb3()
    _offscreen_for_configs([args.config], list(args.set or []))  # robotrl.sb3 and the config load MuJoCo
    from robotrl.config import load_config
    from robotrl.sb3.bench import bench_train, format_bench_train

    cfg = load_config(args.config, list(args.set or []))
    result = bench_train(cfg, args.steps, args.rounds)
    _emit(args, result, format_bench_train(result))


def cmd_export(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.tools import gl

    gl.offscreen_for(gl.run_env_kwargs(args.path))  # the export builds the env, which renders a pixel run
    from robotrl.export.policy import export_run, format_export

    report = export_run(args.path, args.out, args.quantize, env_id=args.env)
    _emit(args, report, format_export(report))


def cmd_deploy(args: argparse.Namespace) -> None:
    from deploy.cli import fault_stop
    from deploy.policy import team_of

    team = team_of(args.policy)
    if team is not None:
        _require_train_stack()
        from robotrl.export.team import deploy_team, format_team

        summary, out_dir = deploy_team(args, team)
        print(f"per-robot tick records: {out_dir}", file=sys.stderr)
        _emit(args, summary, format_team(summary))
    else:
        summary = _deploy_one(args)
    fault = fault_stop(summary)
    if fault is not None:  # the records are written; a supervisor (systemd, a script) must still see it
        raise CLIError(f"stopped early by a fault: {fault}")


def _sim_robot(env_id: str, **kwargs: Any) -> Any:
    """The simulated robot of `deploy --backend sim`, made once the policy has said its env kwargs: a pixel
    policy's camera needs an offscreen OpenGL chosen before MuJoCo loads (GLFW needs a display)."""
    from robotrl.tools import gl

    gl.offscreen_for(kwargs)
    import envs

    return envs.make(env_id, **kwargs)


def _deploy_one(args: argparse.Namespace) -> dict[str, Any]:
    """One robot's deploy, its records, plots and summary."""
    from deploy.cli import format_summary, run_deploy

    make_env = None
    if args.backend == "sim":
        _require_train_stack()
        make_env = _sim_robot
    summary, out_dir = run_deploy(args, make_env)
    try:
        from robotrl.tools.deploy_plots import plot_deploy

        plot_deploy(out_dir)
    except ImportError:
        pass  # plots need matplotlib (the train extra); the numbers are in summary.json either way
    print(f"per-tick records and plots: {out_dir}", file=sys.stderr)
    _emit(args, summary, format_summary(summary))
    return summary


def cmd_bench_deploy(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.tools.bench_deploy import bench_from_args, format_bench

    result = bench_from_args(args)
    _emit(args, result, format_bench(result))


def cmd_bench_envs(args: argparse.Namespace) -> None:
    _require_train_stack()
    from robotrl.tools.bench_envs import bench_all, format_bench

    rows = bench_all(args.num_envs, args.steps, args.env, args.repeats)
    _emit(args, {"results": rows}, format_bench(rows))


def cmd_robot(args: argparse.Namespace) -> None:
    if args.action == "show":
        # MuJoCo picks its OpenGL once, at import: a window for the viewer, EGL/OSMesa for videos.
        from robotrl.tools import gl

        if args.video:
            gl.use_offscreen()
        else:
            gl.use_window(("the robot", f"robotrl robot show {args.file} --video FILE.mp4"))
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

    p = sub.add_parser("eval", help="evaluate a run folder or checkpoint deterministically, watch it, film it",
                       description="Evaluate a policy deterministically. A run folder or checkpoint is also checked "
                                   "against its config's target: the text says met or NOT met, --json reports "
                                   "`target` and `target_met` (null without a target, and with --viewer or --video "
                                   "for a target on info_means.<name>, which watching and filming do not collect).")
    p.add_argument("path", help="run folder, checkpoint (.pt) or exported policy (.onnx)")
    p.add_argument("--episodes", type=int, help="episodes to run (default 10; 3 with --video)")
    p.add_argument("--viewer", action="store_true", help="watch in MuJoCo's viewer in real time ([space] pauses)")
    p.add_argument("--video", metavar="FILE.mp4", help="render the episodes offscreen into an MP4")
    p.add_argument("--size", help="video frame size WIDTHxHEIGHT (default 480x480; only with --video)")
    p.add_argument("--sim-to-sim", action="store_true",
                   help="nominal vs perturbed robot side by side (masses, friction, motor strength, half the "
                        "timestep, RK4, one step of observation latency); default 20 episodes")
    p.add_argument("--seed", type=int, default=123_456)
    p.add_argument("--set", action="append", metavar="env.kwargs.KEY=VALUE",
                   help="override an env kwarg of the run for this evaluation (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object: episodes, return_mean, return_std, "
                   "length_mean, success_rate, terminated, info_means, target, target_met")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="train ours and stable-baselines3 on one config; returns with 95%% CI")
    p.add_argument("config", help="YAML run config (launch/*.yaml)")
    p.add_argument("--seeds", type=int, default=3, help="seeds config.seed .. config.seed+K-1 (default 3)")
    p.add_argument("--steps", type=int, help="total environment steps per run")
    p.add_argument("--out", help="output folder (default runs/compare/<config>-<timestamp>; reruns resume)")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value")
    p.add_argument("--save-baseline", action="store_true",
                   help="also store SB3's side as tests/baselines/sb3/<env>__<algo>.json")
    p.add_argument("--side", choices=("ours", "sb3"),
                   help="train one side only (default both); another process can run the other into the same --out")
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

    p = sub.add_parser("seeds", help="train a config on several seeds, evaluate each against its target, "
                                     "record the table in docs/seeds.md and docs/seeds.json")
    p.add_argument("config", help="YAML run config with a target: key")
    p.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 or 0,2,5 (default 0-4)")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes per seed (default 100)")
    p.add_argument("--root", default="runs/seeds", help="where the per-seed run folders live; reruns resume them")
    p.add_argument("--docs", default="docs", help="folder of seeds.md and seeds.json (merged across runs)")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_seeds)

    p = sub.add_parser("plot", help="(re)draw a run folder's plots (curve.png, losses.png), or overlay "
                                    "`robotrl compare` reports of one env")
    p.add_argument("paths", nargs="+", metavar="RUN_DIR | REPORT.json",
                   help="a run folder (also while it trains), or report.json files of `robotrl compare`")
    p.add_argument("--out", help="with reports: the PNG to write")
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
    except TrainingStopped as stopped:
        how = "--resume continues it" if args.command == "train" else "the same command continues it"
        print(f"robotrl {args.command}: {stopped}; {how}", file=sys.stderr)
        return 128 + signal.Signals[stopped.signame].value
    except BrokenPipeError:
        # The reader closed the pipe (`robotrl ... | head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again, and exit as SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if args.debug:
            raise
        print(f"robotrl {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
