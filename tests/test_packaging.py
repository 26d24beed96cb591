"""The dependency ranges of pyproject.toml are true: their lower bounds are what `make test-lower` installs
(requirements/lower.txt), and the pinned set that `make test` installs (requirements/constraints.txt) lies inside."""

import re
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"pytest", "ruff", "accelerate"}  # test extra: pinned by the constraints, not part of the lower bounds


def project_requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in requires("perceiver-io")]
    return [r for r in reqs if canonicalize_name(r.name) != "perceiver-io"]


def pins(path: Path) -> dict[str, Version]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {canonicalize_name(name): Version(v) for name, v in (re.split("==", x) for x in lines if x)}


def lower_bound(req: Requirement) -> Version:
    bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert len(bounds) == 1, f"{req} needs exactly one lower bound (>=)"
    return bounds[0]


def test_lower_bounds_are_the_tested_ones():
    lower = pins(ROOT / "requirements" / "lower.txt")
    makefile = (ROOT / "Makefile").read_text()
    for req in project_requirements():
        name = canonicalize_name(req.name)
        if name == "torch":
            assert f"TORCH_LOWER ?= torch=={lower_bound(req)}" in makefile
        elif name not in TOOLS:
            assert lower.get(name) == lower_bound(req), f"requirements/lower.txt must pin {name}=={lower_bound(req)}"
    names = {canonicalize_name(r.name) for r in project_requirements()}
    extra = set(lower) - names
    assert not extra, f"requirements/lower.txt pins packages the project does not require: {extra}"


def test_pinned_versions_lie_in_the_ranges():
    pinned = pins(ROOT / "requirements" / "constraints.txt")
    for req in project_requirements():
        name = canonicalize_name(req.name)
        if name == "torch":
            assert "torch" not in pinned  # chosen by the Makefile's TORCH
            continue
        assert name in pinned, f"requirements/constraints.txt does not pin {name}"
        assert req.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]} outside {req}"
