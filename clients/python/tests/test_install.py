"""`pip install ./clients/python` works in a virtual environment, and the
installed package (not the source tree) is what imports."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from botbusd_process import REPO

PACKAGE = REPO / "clients" / "python"


def missing_tools() -> str | None:
    """Why a venv with pip cannot be made and built into here, naming the
    Debian package that fixes it; None when it can."""
    needed = (("venv", "python3-venv"), ("ensurepip", "python3-venv"), ("setuptools", "python3-setuptools"))
    for module, package in needed:
        if importlib.util.find_spec(module) is None:
            return f"no {module} module (Debian: {package})"
    import setuptools

    # setuptools before 70.1 builds wheels with the separate wheel package.
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return "no wheel module, which this setuptools needs to build a wheel (Debian: python3-wheel)"
    return None


def test_pip_installs_the_package_into_a_virtual_environment(tmp_path):
    reason = missing_tools()
    if reason is not None:
        pytest.skip(reason)
    # Built from a copy: pip builds in the tree it is given and would leave
    # build/ and botbus.egg-info/ in the repository.
    source = tmp_path / "python"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv = tmp_path / "venv"
    # Without PYTHONPATH, which points the tests at the source tree.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INDEX"] = "1"  # nothing is downloaded: pyzmq and msgpack come from the system

    made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                          capture_output=True, text=True, timeout=120, env=env)
    if made.returncode != 0 and "ensurepip" in made.stdout + made.stderr:
        pytest.skip(f"venv cannot install pip here (Debian: python3-venv): {made.stdout}{made.stderr}")
    assert made.returncode == 0, made.stdout + made.stderr
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", str(source)],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    imported = subprocess.run(
        [str(python), "-c", "import botbus, pathlib; print(pathlib.Path(botbus.__file__).parent); "
                            "print((pathlib.Path(botbus.__file__).parent / 'py.typed').exists()); "
                            "print(botbus.Client.__name__, botbus.__version__)"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr
    where, typed, names = imported.stdout.splitlines()
    assert Path(where).is_relative_to(venv), where
    assert typed == "True"
    assert names == "Client 0.1.0"
