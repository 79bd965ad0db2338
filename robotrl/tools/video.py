"""`robotrl eval --video`: episodes of a policy rendered offscreen into an MP4 at the env's frame rate.

Rendering is software GL on machines without a GPU and costs about a thousand physics steps per
frame, so multisampling, shadows and reflections are off and one frame is drawn per control step.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import mujoco
import numpy as np

import envs
from envs.scene import Scene, follow_camera
from policies.checkpoint import atomic_write_bytes
from robotrl.train.evaluate import PolicyFn

# A frame per control step at the env's rate; x264's "veryfast" keeps encoding far below rendering.
CODEC, PIXEL_FORMAT, PRESET = "libx264", "yuv420p", "veryfast"


@dataclass(frozen=True)
class VideoInfo:
    """What a reader finds in an MP4 file: frame count, size and frame rate."""

    frames: int
    width: int
    height: int
    fps: float


class FrameRenderer:
    """Offscreen frames of a `Scene` from a camera that follows the robot."""

    def __init__(self, scene: Scene, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"video size {width}x{height}: width and height must be even (H.264 4:2:0)")
        model = scene.model
        # The offscreen buffer must hold the frame; models declare theirs in <visual><global offwidth>.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        # Software GL pays for every multisample: without them a frame costs about 2.5x less.
        model.vis.quality.offsamples = 0
        self.scene = scene
        self.renderer = mujoco.Renderer(model, height, width)
        self.camera = follow_camera(model, scene.sync())
        self.options = mujoco.MjvOption()

    def render(self) -> np.ndarray:
        """The env's current state as an (height, width, 3) uint8 image."""
        self.renderer.update_scene(self.scene.sync(), camera=self.camera, scene_option=self.options)
        flags = self.renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        return self.renderer.render()

    def close(self) -> None:
        self.renderer.close()


class Mp4Writer:
    """H.264 frames into an in-memory MP4 that `close()` writes to disk atomically."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        self.path = Path(path)
        self._buffer = io.BytesIO()
        self._container = av.open(self._buffer, mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1000)
        self._stream = self._container.add_stream(CODEC, rate=rate, options={"preset": PRESET})
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, PIXEL_FORMAT
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()
        atomic_write_bytes(self.path, self._buffer.getvalue())


def read_video(path: str | Path) -> tuple[VideoInfo, list[np.ndarray]]:
    """Decode an MP4 back: its info and every frame as (height, width, 3) uint8 RGB."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        return VideoInfo(len(frames), stream.codec_context.width, stream.codec_context.height, fps), frames


def record_video(policy: PolicyFn, env_id: str, path: str | Path, episodes: int = 3, seed: int = 123_456,
                 env_kwargs: dict[str, Any] | None = None, width: int = 480,
                 height: int = 480) -> dict[str, Any]:
    """Run `episodes` episodes of `policy` (batched obs -> batched actions) and write them to `path`.

    Each episode contributes its first state and one frame per step. Returns the episodes' returns
    and lengths, the frame count, the frame rate, and the wall and CPU time it took. MUJOCO_GL must name an
    offscreen backend before mujoco is first imported (`robotrl.tools.gl.use_offscreen`, as the CLI does).
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1 for a video, got {episodes}")
    start, cpu_start = time.perf_counter(), time.process_time()
    env = envs.make(env_id, **(env_kwargs or {}))
    renderer = writer = None
    returns, lengths, successes = [], [], []
    try:
        obs, _ = env.reset(seed=seed)
        scene = Scene(env)
        renderer = FrameRenderer(scene, width, height)
        writer = Mp4Writer(path, width, height, scene.frame_rate)
        for episode in range(episodes):
            if episode:
                obs, _ = env.reset(seed=seed + episode)
            writer.write(renderer.render())
            total, steps, done = 0.0, 0, False
            while not done:
                action = policy(np.asarray(obs, dtype=np.float32)[None])[0]
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                steps += 1
                done = terminated or truncated
                writer.write(renderer.render())
            returns.append(total)
            lengths.append(steps)
            if "is_success" in info:
                successes.append(float(info["is_success"]))
        writer.close()
    finally:
        if renderer is not None:
            renderer.close()
        env.close()
    return {
        "episodes": episodes,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "length_mean": float(np.mean(lengths)),
        "success_rate": float(np.mean(successes)) if successes else None,
        "returns": returns,
        "lengths": lengths,
        "video": os.fspath(path),
        "frames": writer.frames,
        "fps": scene.frame_rate,
        "wall_s": time.perf_counter() - start,
        # CPU of every thread in the process (software GL and x264 run their own): below the video's
        # duration means the recording keeps up with real time even on one free core.
        "cpu_s": time.process_time() - cpu_start,
    }
