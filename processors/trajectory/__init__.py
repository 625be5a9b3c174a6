"""Trajectory signals: steps, tool calls, errors, redundancy, loops, budgets and outcome per agent task."""

from frictionlens.processors.trajectory.history import Rates, TaskHistory
from frictionlens.processors.trajectory.stage import TrajectoryStage

__all__ = ["Rates", "TaskHistory", "TrajectoryStage"]
