"""The course map is true: every file it names exists, nothing is left off it, and
README.md shows the same table."""

from __future__ import annotations

from pathlib import Path

from sysdesign.course import COURSE, course_map

ROOT = Path(__file__).resolve().parent.parent


def test_every_file_on_the_map_exists():
    for system in COURSE:
        for path in (*system.notebooks, *system.labs):
            assert (ROOT / path).is_file(), f"{system.name}: {path} is on the map but missing"
        for lab in system.labs:
            solution = ROOT / "solutions" / Path(lab).name
            assert solution.is_file(), f"{lab} has no solution {solution}"


def test_every_notebook_and_lab_is_on_the_map():
    listed = {path for system in COURSE for path in system.notebooks}
    listed |= {lab for system in COURSE for lab in system.labs}
    present = {
        str(path.relative_to(ROOT))
        for folder in ("notebooks", "labs")
        for path in (ROOT / folder).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in path.parts
    }
    assert present - listed == set(), "add these to sysdesign/course.py"


def test_readme_shows_the_course_map():
    assert course_map() in (ROOT / "README.md").read_text(), (
        "README.md's course map is out of date: paste sysdesign.course.course_map() into it"
    )


def test_readme_gives_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
