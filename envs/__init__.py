"""MuJoCo robots behind the Gymnasium API; importing this registers the `robotrl/...` ids."""

from envs.multi import MULTI_IDS, is_multi, make_multi, make_multi_batch
from envs.registry import TASKS, check_id, is_robotrl, make, make_vec, register_all

register_all()

__all__ = ["MULTI_IDS", "TASKS", "check_id", "is_multi", "is_robotrl", "make", "make_multi", "make_multi_batch",
           "make_vec", "register_all"]
