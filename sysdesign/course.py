"""The course map: every system, its notebooks and its lab, in learning order.

README.md and ``notebooks/00-start-here.ipynb`` show this table; ``tests/test_course.py``
checks that every file it names exists, that every notebook and lab in the repository is
on the map, and that README.md carries the same table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class System:
    """One system of the course: its notebooks and labs (paths from the repository root)."""

    name: str
    notebooks: tuple[str, ...]
    labs: tuple[str, ...]
    what: str


COURSE = [
    System(
        "How to use the course",
        ("notebooks/00-start-here.ipynb",),
        (),
        "notebooks, labs and checks; the three-step design framework as a worksheet",
    ),
    System(
        "Foundations: estimation",
        ("notebooks/01-foundations/01-back-of-the-envelope.ipynb",),
        ("labs/01-capacity-estimation-lab.ipynb",),
        "capacity estimation with an explorer; latency numbers, published and measured",
    ),
    System(
        "Foundations: scaling building blocks",
        (
            "notebooks/01-foundations/02-load-balancing.ipynb",
            "notebooks/01-foundations/03-caching-and-cdn.ipynb",
            "notebooks/01-foundations/04-sharding.ipynb",
            "notebooks/01-foundations/05-replication.ipynb",
        ),
        (
            "labs/03-lru-ttl-cache-lab.ipynb",
            "labs/04-consistent-hash-ring-lab.ipynb",
        ),
        "load-balancing policies, caches, sharding schemes and replication simulated and "
        "plotted against queueing, Che, 1/(n+1) and quorum theory",
    ),
    System(
        "Rate limiter",
        (
            "notebooks/02-rate-limiter/01-algorithms.ipynb",
            "notebooks/02-rate-limiter/02-trade-offs.ipynb",
            "notebooks/02-rate-limiter/03-distributed.ipynb",
            "notebooks/02-rate-limiter/04-in-front-of-an-api.ipynb",
        ),
        ("labs/02-rate-limiter-lab.ipynb",),
        "five algorithms on one trace; accuracy and memory measured; the race on Redis and "
        "its fixes; a 3-node cluster; 429s in front of an HTTP API",
    ),
]

# Systems from the design notes that later issues add, in the order the course takes them.
PLANNED = [
    "News feed",
    "Chat system",
    "Notification system",
    "Video sharing platform",
    "Recommendation pipeline",
    "Graph data: dependencies, workflows, social graph",
]


def _link(path: str, base: str) -> str:
    label = path.rsplit("/", 1)[-1].removesuffix(".ipynb")
    return f"[{label}]({base}{path})"


def course_map(base: str = "") -> str:
    """The course map as a Markdown table; ``base`` prefixes links (``"../"`` from a notebook)."""
    rows = ["| System | Notebooks | Labs | What you do |", "|---|---|---|---|"]
    for system in COURSE:
        notebooks = "<br>".join(_link(path, base) for path in system.notebooks)
        labs = "<br>".join(_link(path, base) for path in system.labs) or "—"
        rows.append(f"| {system.name} | {notebooks} | {labs} | {system.what} |")
    for name in PLANNED:
        rows.append(f"| {name} | *coming* | *coming* | |")
    return "\n".join(rows) + "\n"


class _Markdown:
    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def show_course_map(base: str = "../") -> _Markdown:
    """The course map, rendered as Markdown in a notebook (links relative to ``notebooks/``)."""
    return _Markdown(course_map(base))
