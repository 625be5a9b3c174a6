"""What the stages learned survives restarts: one small JSON file, a section per stage.

Baselines take hundreds of calls to learn (drift baselines, learned step budgets); losing
them at every deploy would blind the stages for that long. The file is written atomically
(temporary file, fsync, ``os.replace``), so a crash mid-write leaves the previous version.
It carries a format version; a file that is corrupt, from an unknown version, or whose
section a stage rejects is logged as a warning and that state starts fresh: persistence
never stops the app.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

_log = logging.getLogger(__name__)

VERSION = 1
FILE_NAME = "state.json"
"""default file name inside the data dir"""


class Persistent(Protocol):
    """A stage whose learned state can be saved and restored (JSON-able)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class StateFile:
    """The versioned state file: ``{"version": 1, "sections": {stage name: state}}``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any] | None:
        """The sections, or None when there is no usable file (a warning says why, unless absent)."""
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            _log.warning(
                "frictionlens state file %s unreadable (%s); starting fresh", self.path, exc
            )
            return None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            _log.warning(
                "frictionlens state file %s is corrupt (%s); starting fresh", self.path, exc
            )
            return None
        if (
            not isinstance(doc, dict)
            or doc.get("version") != VERSION
            or not isinstance(doc.get("sections"), dict)
        ):
            version = doc.get("version") if isinstance(doc, dict) else None
            _log.warning(
                "frictionlens state file %s has unknown format (version %r); starting fresh",
                self.path,
                version,
            )
            return None
        return doc["sections"]

    def save(self, sections: Mapping[str, Any]) -> bool:
        """Replace the file with ``sections`` atomically; False (and a warning) if that failed."""
        tmp: str | None = None
        try:
            data = json.dumps(
                {"version": VERSION, "sections": sections}, separators=(",", ":"), allow_nan=False
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent
            )
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            return True
        except (OSError, TypeError, ValueError) as exc:
            _log.warning("could not save frictionlens state to %s (%s)", self.path, exc)
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            return False

    def save_stages(self, stages: Mapping[str, Persistent]) -> bool:
        """Save each stage's ``state_dict()`` under its name; a failing stage is left out."""
        sections: dict[str, Any] = {}
        for name, stage in stages.items():
            try:
                sections[name] = stage.state_dict()
            except Exception as exc:  # a stage bug must not lose the other sections
                _log.warning("frictionlens stage %s could not export its state (%s)", name, exc)
        return self.save(sections)

    def restore_stages(self, stages: Mapping[str, Persistent]) -> None:
        """Hand each stage its saved section; a section it rejects is dropped with a warning."""
        sections = self.load()
        if not sections:
            return
        for name, stage in stages.items():
            state = sections.get(name)
            if state is None:
                continue
            try:
                stage.load_state_dict(state)
            except Exception as exc:
                _log.warning(
                    "frictionlens stage %s rejected its saved state (%s); starting fresh", name, exc
                )
