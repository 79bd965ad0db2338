"""Robots as data: description files (YAML beside an MJCF model), their loader, and the shipped robots."""

from envs.robots.description import RobotDescription, RobotError, load_robot, shipped_robots

__all__ = ["RobotDescription", "RobotError", "load_robot", "shipped_robots"]
