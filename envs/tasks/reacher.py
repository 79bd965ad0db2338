"""Reacher-v0: the reach task on the two-link planar arm (envs/robots/reacher), configured as it always ran.

Joint torques from ideal motors (no torque-speed line), joint positions as cos and sin, the fingertip's
offset from the target in the table's plane, targets area-uniform in a disc of radius 0.2 m, reward
minus the distance and `control_cost` times the squared action, success within 2 cm. Observation,
reward, spaces and the random draws of every episode are those of the task before it became a
configuration of ReachTask (tests/test_golden_trajectories.py replays them).
"""

from __future__ import annotations

from envs.sim import BatchSim
from envs.tasks.reach import ReachTask

SUCCESS_DISTANCE = 0.02
OBSERVATION = ("cos_q", "sin_q", "qvel", "fingertip_to_target")


class ReacherTask(ReachTask):
    default_robot = "reacher"
    marker_size = 0.009
    marker_rgba = (0.9, 0.2, 0.2, 1.0)

    def __init__(self, sim: BatchSim, robot: str | None = None, action_mode: str = "torque",
                 action_scale: float = 1.0, control_cost: float = 0.01) -> None:
        super().__init__(sim, robot, action_mode=action_mode, action_scale=action_scale,
                         success_distance=SUCCESS_DISTANCE, init_noise_joints=0.1, init_noise_velocity=0.005,
                         weights={"distance": 1.0, "precision": 0.0, "joint_velocity": 0.0, "action_rate": 0.0,
                                  "action": control_cost},
                         planar=True, targets="disc", observation=OBSERVATION, speed_limit=False)
        self.obs_units = {}  # Reacher-v0's exported policies have always named fields without units
