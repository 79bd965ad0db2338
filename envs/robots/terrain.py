"""Ground for legged robots: flat, rough (a height field) or sloped, with an optional curriculum.

`terrain` in the Locomotion env kwargs (off by default: MuJoCo's flat plane):

    terrain: {type: rough, roughness: 0.04, size: 16.0, resolution: 0.1, seed: 0, curriculum: false, levels: 10}
    terrain: {type: slope, slope: 0.15}          # rad: a pyramid rising to the centre on every side

A height field is one for the whole batch (the model is shared), drawn from `seed`, so the same kwargs
give the same ground. Rough ground is uniform noise of peak-to-peak `roughness` metres per cell. With
`curriculum: true` the field is cut into `levels` bands along x whose difficulty grows from 1/levels of
`roughness` (or `slope`) to all of it; each simulation starts in the band of its level, goes up a level
after an episode in which it walked more than half a band, down after a fall, and goes to a random
level once past the last one (legged_gym's terrain curriculum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

TYPES = ("flat", "rough", "slope")
_KEYS = ("type", "roughness", "slope", "size", "resolution", "seed", "curriculum", "levels")
SPAWN_FOOTPRINT = 0.3
"""m: a robot starts above the highest ground within this distance of its spawn point."""


@dataclass(frozen=True)
class Terrain:
    """A validated terrain option."""

    type: str = "flat"
    roughness: float = 0.04
    slope: float = 0.15
    size: float = 16.0
    resolution: float = 0.1
    seed: int = 0
    curriculum: bool = False
    levels: int = 10

    @classmethod
    def from_kwargs(cls, value: dict[str, Any] | None) -> Terrain | None:
        """The option of an env's `terrain` kwarg; None for the default plane."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError(f"Locomotion terrain: expected a mapping, got {value!r}")
        unknown = [k for k in value if k not in _KEYS]
        if unknown:
            raise ValueError(f"Locomotion terrain.{unknown[0]}: unknown key (expected one of: {', '.join(_KEYS)})")
        terrain = cls(**value)
        if terrain.type not in TYPES:
            raise ValueError(f"Locomotion terrain.type: expected one of {list(TYPES)}, got {terrain.type!r}")
        for key in ("roughness", "slope", "size", "resolution"):
            v = getattr(terrain, key)
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0 or (key in ("size", "resolution")
                                                                                 and v == 0):
                raise ValueError(f"Locomotion terrain.{key}: expected a positive number, got {v!r}")
        if not isinstance(terrain.levels, int) or terrain.levels < 1:
            raise ValueError(f"Locomotion terrain.levels: expected an integer >= 1, got {terrain.levels!r}")
        return None if terrain.type == "flat" and not terrain.curriculum else terrain

    @property
    def cells(self) -> int:
        return round(self.size / self.resolution) + 1

    def heights(self) -> np.ndarray:
        """(rows along y, columns along x) ground heights in metres, >= 0, drawn from `seed`."""
        n = self.cells
        coords = np.linspace(-self.size / 2, self.size / 2, n)
        x, y = np.meshgrid(coords, coords)
        difficulty = np.ones_like(x)
        if self.curriculum:
            band = np.clip(((x + self.size / 2) / self.size * self.levels).astype(int), 0, self.levels - 1)
            difficulty = (band + 1) / self.levels
        if self.type == "rough":
            rng = np.random.default_rng(self.seed)
            return rng.uniform(0.0, self.roughness, size=x.shape) * difficulty
        if self.type == "slope":
            if self.curriculum:
                # Each band a pyramid of its own across y, so the slope changes along x only.
                return np.tan(self.slope * difficulty) * (self.size / 2 - np.abs(y))
            return np.tan(self.slope) * (self.size / 2 - np.maximum(np.abs(x), np.abs(y)))
        return np.zeros_like(x)

    def add_to(self, spec: mujoco.MjSpec) -> None:
        """The height field over the robot's ground plane (a plane at z = 0 is added where the file has none)."""
        heights = self.heights()
        top = max(float(heights.max()), 1e-4)
        field = spec.add_hfield(name="terrain", nrow=heights.shape[0], ncol=heights.shape[1],
                                size=[self.size / 2, self.size / 2, top, 0.1])
        field.userdata = list((heights / top).ravel())
        ground = {"contype": 1, "conaffinity": 1, "condim": 3, "friction": [1.0, 0.005, 0.0001],
                  "rgba": [0.35, 0.4, 0.45, 1.0]}
        spec.worldbody.add_geom(name="terrain", type=mujoco.mjtGeom.mjGEOM_HFIELD, hfieldname="terrain", **ground)
        if not any(g.type == mujoco.mjtGeom.mjGEOM_PLANE for g in spec.worldbody.geoms):
            spec.worldbody.add_geom(name="terrain_floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05],
                                    **ground)
            spec.worldbody.add_light(pos=[0, 0, 4], dir=[0, 0, -1],
                                     type=int(mujoco.mjtLightType.mjLIGHT_DIRECTIONAL))


class TerrainMap:
    """Where each simulation starts, and the curriculum's levels (flat ground: the origin, always)."""

    def __init__(self, terrain: Terrain | None, nsim: int) -> None:
        self.terrain = terrain
        self.level = np.zeros(nsim, dtype=np.int64)
        self.heights = terrain.heights() if terrain is not None else None

    def height(self, x: float, y: float, radius: float = 0.0) -> float:
        """The highest ground within `radius` of (x, y), m."""
        if self.terrain is None or self.heights is None:
            return 0.0
        t = self.terrain
        half, res = t.size / 2, t.resolution
        cols = np.clip(np.round((np.array([x - radius, x + radius]) + half) / res).astype(int), 0, t.cells - 1)
        rows = np.clip(np.round((np.array([y - radius, y + radius]) + half) / res).astype(int), 0, t.cells - 1)
        return float(self.heights[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1].max())

    def spawn(self, i: int, rng: np.random.Generator) -> tuple[float, float, float]:
        """(x, y, ground height) where simulation i starts its episode."""
        t = self.terrain
        if t is None:
            return 0.0, 0.0, 0.0
        if t.curriculum:
            band = t.size / t.levels
            x = -t.size / 2 + band * (self.level[i] + 0.5)
            y = rng.uniform(-t.size / 4, t.size / 4)
        else:
            x, y = rng.uniform(-t.size / 4, t.size / 4, size=2)
        return float(x), float(y), self.height(x, y, SPAWN_FOOTPRINT)

    def update_levels(self, ids: np.ndarray, walked: np.ndarray, fell: np.ndarray,
                      rngs: list[np.random.Generator]) -> None:
        """The curriculum step at the end of the episodes of `ids`: up after walking far, down after a fall."""
        t = self.terrain
        if t is None or not t.curriculum:
            return
        band = t.size / t.levels
        for i in ids:
            if walked[i] > band / 2:
                self.level[i] += 1
            elif fell[i]:
                self.level[i] = max(0, self.level[i] - 1)
            if self.level[i] >= t.levels:
                self.level[i] = rngs[i].integers(0, t.levels)

