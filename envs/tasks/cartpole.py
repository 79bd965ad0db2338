"""CartPole: push a cart along a rail to balance a hinged pole upright, or to swing it up first.

The state is four numbers (cart position, pole angle and their rates), observed as five
(cart position, cos and sin of the pole angle, velocities) so that the angle never wraps; the
value-based and tabular methods build on this task, so it stays that small.
"""

from __future__ import annotations

import numpy as np

from envs.sim import BatchSim
from envs.tasks.base import StepResult, Task

UPRIGHT_ANGLE = 0.2
"""|pole angle| (rad) below which the pole counts as up; balance ends when it is exceeded."""
CART_LIMIT = 2.4
"""|cart position| (m) that ends a balance episode (the rail's stops are at 2.5 m)."""


def wrap_angle(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def tolerance(x: np.ndarray, margin: float, value_at_margin: float = 0.1) -> np.ndarray:
    """1 at x = 0, falling as a Gaussian to `value_at_margin` at |x| = margin: a bounded shaping term."""
    scale = np.sqrt(-2.0 * np.log(value_at_margin))
    return np.exp(-0.5 * (x * scale / margin) ** 2)


class CartPoleTask(Task):
    xml = "cartpole.xml"
    frame_skip = 2  # 100 Hz physics, 50 Hz policy
    max_episode_steps = 500
    obs_fields = (("cart_pos", 1), ("cos_pole", 1), ("sin_pole", 1), ("cart_vel", 1), ("pole_vel", 1))
    uses_derived_state = False  # observe() and evaluate() read qpos and qvel only

    def __init__(self, sim: BatchSim, task: str = "balance", control_cost: float = 0.0) -> None:
        if task not in ("balance", "swingup"):
            raise ValueError(f"CartPole task: expected 'balance' or 'swingup', got {task!r}")
        super().__init__(sim)
        self.task = task
        self.control_cost = control_cost
        # Success needs to know whether an episode lasted to its limit; the env sets the limit it uses.
        self.elapsed = np.zeros(self.n, dtype=np.int64)
        self.action = np.zeros((self.n, 1))

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        qpos, qvel = self.sim.qpos, self.sim.qvel
        for i in ids:
            # One draw of four numbers: the same stream as qpos (2) then qvel (2) drawn separately.
            draw = rngs[i].uniform(-0.05, 0.05, size=4)
            qpos[i] = draw[:2]
            qvel[i] = draw[2:]
        if self.task == "swingup":
            qpos[ids, 1] += np.pi
        self.elapsed[ids] = 0

    def apply_action(self, action: np.ndarray) -> None:
        # MuJoCo clamps ctrl to the motor's ctrlrange; evaluate() clips the kept action the same way
        # where a reward term needs the force.
        self.action = action
        self.sim.ctrl[:, 0] = action[:, 0]

    def force(self) -> np.ndarray:
        """The applied (clipped) motor command of the last step, in [-1, 1]."""
        return np.clip(self.action[:, 0], self.action_low[0], self.action_high[0])

    def angle(self) -> np.ndarray:
        return wrap_angle(self.sim.qpos[:, 1])

    def observe(self) -> np.ndarray:
        return self._observations(self.sim.qpos, self.sim.qvel)

    def observe_ids(self, ids: np.ndarray) -> np.ndarray:
        return self._observations(self.sim.qpos[ids], self.sim.qvel[ids])

    @staticmethod
    def _observations(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        # Column by column into one float32 array: np.stack + astype cost more than the math here.
        obs = np.empty((qpos.shape[0], 5), dtype=np.float32)
        obs[:, 0] = qpos[:, 0]
        np.cos(qpos[:, 1], out=obs[:, 1], casting="same_kind")
        np.sin(qpos[:, 1], out=obs[:, 2], casting="same_kind")
        obs[:, 3:] = qvel
        return obs

    def evaluate(self, action: np.ndarray) -> StepResult:
        self.elapsed += 1
        x = self.sim.qpos[:, 0].copy()
        angle = self.angle()
        if self.task == "balance":
            # In-place ops: this runs every step for every env, and each numpy call costs ~0.5 us here.
            terminated = np.abs(x) > CART_LIMIT
            terminated |= np.abs(angle) >= UPRIGHT_ANGLE
            reward = np.ones(self.n) if self.control_cost == 0 else 1.0 - self.control_cost * self.force() ** 2
            # At the limit and not terminated (which implies up); a > b is a & ~b for booleans.
            success = (self.elapsed >= self.max_episode_steps) > terminated
            return StepResult(reward=reward, terminated=terminated, success=success,
                              extras={"pole_angle": angle, "cart_pos": x})
        # Swing-up never terminates; dm_control's shaping: upright dominates, centred cart, gentle force
        # and spin.
        u = self.force()
        upright = (np.cos(angle) + 1.0) / 2.0
        centered = (1.0 + tolerance(x, margin=2.0)) / 2.0
        small_control = (4.0 + (1.0 - u**2)) / 5.0
        small_velocity = (1.0 + tolerance(self.sim.qvel[:, 1], margin=5.0)) / 2.0
        reward = upright * centered * small_control * small_velocity - self.control_cost * u**2
        success = (self.elapsed >= self.max_episode_steps) & (np.abs(angle) < UPRIGHT_ANGLE)
        return StepResult(reward=reward, terminated=np.zeros(self.n, dtype=bool), success=success,
                          extras={"pole_angle": angle, "cart_pos": x})
