"""sysdesign.explore: validation, grids, and a widget that updates one figure in place."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from sysdesign import explore
from sysdesign.explore import Choice, Explorer, Slider


def line(n, slope=1.0, kind="lines"):
    return {"x": list(range(n)), "y": [slope * i for i in range(n)], "kind": kind}


def line_figure(result):
    return go.Figure(go.Scatter(x=result["x"], y=result["y"], mode=result["kind"]))


@pytest.fixture
def demo():
    return Explorer(
        "demo",
        line,
        line_figure,
        {
            "n": Slider(10, 2, 100, integer=True),
            "slope": Slider(1.0, 0.01, 100, log=True),
            "kind": Choice("lines", ["lines", "markers"]),
        },
        describe=lambda result: f"{len(result['x'])} points",
    )


def test_invalid_parameters_name_the_parameter(demo):
    with pytest.raises(ValueError, match=r"n must be between 2 and 100, got 1000"):
        demo.compute(n=1000)
    with pytest.raises(ValueError, match=r"n must be a whole number, got 2.5"):
        demo.compute(n=2.5)
    with pytest.raises(ValueError, match=r"slope must be a number, got 'steep'"):
        demo.compute(slope="steep")
    with pytest.raises(ValueError, match=r"kind must be one of \['lines', 'markers'\]"):
        demo.compute(kind="bars")
    with pytest.raises(ValueError, match=r"unknown parameter colour"):
        demo.compute(colour="red")


def test_slider_definitions_are_checked():
    with pytest.raises(ValueError, match="outside"):
        Slider(0, 1, 2)
    with pytest.raises(ValueError, match="log slider needs min > 0"):
        Slider(1, 0, 2, log=True)


def test_grid_moves_one_control_at_a_time(demo):
    grid = list(demo.grid(points=3))
    assert grid[0] == demo.defaults()
    for params in grid[1:]:
        changed = [k for k in params if params[k] != demo.defaults()[k]]
        assert len(changed) == 1
    assert {p["n"] for p in grid} == {2, 10, 51, 100}
    assert {round(p["slope"], 6) for p in grid} == {0.01, 1.0, 100.0}
    assert {p["kind"] for p in grid} == {"lines", "markers"}


def test_log_slider_grid_stays_inside_its_range():
    values = Slider(10, 1, 200, log=True).values(7)
    assert values[0] == 1 and values[-1] == 200  # 10 ** log10(200) is 200.00000000000003


def test_widget_updates_the_same_figure_in_place(demo):
    panel = demo.widget(n=5)
    figure = panel.figure
    assert list(figure.data[0].y) == [0, 1, 2, 3, 4]
    panel.set(slope=2.0, kind="markers")
    assert panel.figure is figure and panel.updates == 2
    assert list(figure.data[0].y) == [0, 2, 4, 6, 8]
    assert figure.data[0].mode == "markers"
    assert panel.status.value == "5 points"
    assert repr(panel) == "<explorer 'demo': n, slope, kind>"


def test_widget_shows_invalid_values_instead_of_raising(demo):
    def picky(n, slope, kind):
        if n == 7:
            raise ValueError("n may not be 7")
        return line(n, slope, kind)

    panel = Explorer("picky", picky, line_figure, demo.params).widget()
    panel.set(n=7)
    assert "n may not be 7" in panel.status.value and panel.updates == 0
    with pytest.raises(ValueError, match="unknown parameter 'm'"):
        panel.set(m=1)


def test_registry_refuses_two_explorers_with_one_name(demo):
    explore.register(demo)
    try:
        with pytest.raises(ValueError, match="already registered"):
            explore.register(Explorer("demo", line, line_figure, {}))
    finally:
        explore.REGISTRY.pop("demo")


def test_load_all_finds_the_course_explorers():
    registry = explore.load_all()
    assert "capacity" in registry
    for name, item in registry.items():
        assert item.name == name
        assert isinstance(item.render(), go.Figure)
