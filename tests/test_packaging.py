"""A wheel built from the repo installs and imports in a fresh venv, like the editable install."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    "frictionlens",
    "frictionlens.semconv",
    "frictionlens.cli",
    "frictionlens.instrumentation.openai",
    "frictionlens.features.text",
    "frictionlens.processors.pipeline",
    "frictionlens.exporters.filestore",
    "frictionlens.collector",
    # the report reads review verdicts without the review extra's web framework
    "frictionlens.exporters.report",
]


def _package_dirs() -> set[str]:
    """Every folder with an __init__.py under the mapped top-level folders, as a package name."""
    mapping = {
        "frictionlens": "frictionlens",
        "instrumentation": "frictionlens.instrumentation",
        "processors": "frictionlens.processors",
        "exporters": "frictionlens.exporters",
        "collector": "frictionlens.collector",
    }
    names = set()
    for folder, package in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            names.add(".".join((package, *rel)))
    return names


def test_every_package_folder_is_packaged():
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    assert _package_dirs() <= listed, (
        f"add to pyproject.toml packages: {sorted(_package_dirs() - listed)}"
    )


@pytest.mark.timeout(600)
def test_wheel_installs_and_imports_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("frictionlens-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert (
        "frictionlens/instrumentation/openai.py" in names
        and "frictionlens/processors/pipeline.py" in names
        and "frictionlens/review/templates/item.html" in names
    )
    assert not any(n.startswith(("instrumentation/", "processors/", "tests/")) for n in names)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True
    )
    code = f"import importlib, frictionlens; [importlib.import_module(m) for m in {MODULES!r}]; print(frictionlens.__file__)"
    out = subprocess.run(
        [str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout
    assert str(env_dir) in out  # the wheel's copy, not the work tree's
    ep = subprocess.run(
        [
            str(py),
            "-c",
            "from importlib.metadata import entry_points; "
            "print([e.value for e in entry_points(group='opentelemetry_instrumentor')])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "frictionlens.instrumentation.openai:OpenAIInstrumentor" in ep
