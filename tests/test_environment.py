"""environment.yml (conda / Binder / JupyterHub) lists exactly what pyproject.toml does."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [dep for dep in env["dependencies"] if isinstance(dep, str)]
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    listed = set(pip) - {"-e ."}

    assert listed == wanted, (
        "environment.yml and pyproject.toml disagree: "
        f"only in environment.yml: {sorted(listed - wanted)}; "
        f"only in pyproject.toml: {sorted(wanted - listed)}"
    )
    assert "-e ." in pip, "environment.yml must install the course package itself"
    assert "redis-server" in conda, "conda users get a real redis-server from conda-forge"
    assert "conda-forge" in env["channels"]
