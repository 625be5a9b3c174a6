"""Friction: what users do when an answer failed them (see ``stage.py``)."""

from frictionlens.processors.friction.stage import FrictionStage

__all__ = ["FrictionStage"]
