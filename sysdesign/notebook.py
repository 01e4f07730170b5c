"""What every notebook's setup cell does, and how notebooks show the package's code."""

from __future__ import annotations

import inspect
import textwrap

PLOTLY_RENDERER = "plotly_mimetype"


def setup() -> None:
    """Prepare a notebook kernel for the course.

    - Plotly renders as its JSON mimetype only (JupyterLab draws it). Never the
      ``notebook`` renderer, which embeds 4.8 MB of plotly.js in every saved notebook.
    - Figures use the course's compact template (see :mod:`sysdesign.figures`).
    """
    import plotly.io as pio

    import sysdesign.figures  # noqa: F401  (registers the template)

    pio.renderers.default = PLOTLY_RENDERER


def source_of(obj: object) -> str:
    """The source code of a function, class or module from the package."""
    return textwrap.dedent(inspect.getsource(obj)).rstrip() + "\n"


class Source:
    """Highlighted source that renders as Markdown in JupyterLab and as text elsewhere."""

    def __init__(self, code: str, title: str | None = None):
        self.code = code
        self.title = title

    def _repr_markdown_(self) -> str:
        heading = f"`{self.title}`\n\n" if self.title else ""
        return f"{heading}```python\n{self.code}```\n"

    def __repr__(self) -> str:
        return self.code


def show_source(obj: object) -> Source:
    """Show the real, tested source of ``obj`` in a notebook (the last expression in a cell)."""
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    name = getattr(obj, "__qualname__", None)
    title = f"{module}.{name}" if name and module != getattr(obj, "__name__", None) else module
    return Source(source_of(obj), title=title)
