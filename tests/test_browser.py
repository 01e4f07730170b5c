"""The first course notebook, in a real browser: JupyterLab + headless Chromium.

What a learner does, checked end to end: open ``01-back-of-the-envelope.ipynb`` in
JupyterLab, Run > Run All Cells, see every cell run without an error, see the capacity
explorer render, type a new value into one of its sliders and watch the numbers change.

The server is hermetic: config, data, runtime and IPython dirs (and ``$HOME``) live in
``tmp_path``, nothing phones home (no news, no update check, no PyPI extension manager,
Chromium resolves no host name) and every process it starts (server, kernels, whatever a
kernel starts) carries a marker in its environment, so that the teardown can prove none
is left behind.

Synchronisation is by polling observable state (DOM, REST API) against generous deadlines,
never by fixed sleeps. On failure the message names a screenshot, the page's HTML and the
server log, all kept in ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import on_ci, require_binary

from sysdesign.capacity.explorers import TILES, capacity
from sysdesign.store import REDIS_URL_ENV

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = Path("notebooks/01-foundations/01-back-of-the-envelope.ipynb")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Resolve no host name at all: the page may only talk to the server on 127.0.0.1.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
MARKER = "SYSDESIGN_BROWSER_TEST"  # environment variable set on every process we start

# Deadlines in seconds, generous for a 2-core CI machine.
SERVER_START = 120
KERNEL_IDLE = 120
RUN_ALL = 300
WIDGET_RENDER = 120
FIGURE_UPDATE = 60
SHUTDOWN = 60

# The explorer under test and the slider the test moves (linear in every traffic number).
SLIDER = "daily_active_users"
AVERAGE_QPS_TITLE = next(title for name, title, _ in TILES if name == "avg_qps")
ERROR_TEXTS = ("Error displaying widget", "Traceback")


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.25):
    """Poll ``check()`` until it returns something truthy; return it, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# --- the JupyterLab server ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def marked_processes(marker: str) -> dict[int, str]:
    """``{pid: command line}`` of every live process whose environment carries ``marker``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if f"{MARKER}={marker}".encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            status = (entry / "status").read_text()
            if re.search(r"^State:\s+Z", status, re.MULTILINE):  # a zombie holds no resources
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found[int(entry.name)] = cmdline.strip()
    return found


@dataclass
class Lab:
    """A running JupyterLab server; see :func:`lab`."""

    root: Path
    port: int
    token: str
    marker: str
    log: Path
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.base}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        """Start the server in its own process group; return once ``/api/status`` answers."""
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                return bool(self.api("/api/status"))
            except (OSError, ValueError):
                return False

        wait_until(f"jupyter lab to answer on port {self.port}", answers, SERVER_START)

    def stop(self) -> dict[int, str]:
        """Shut down server and kernels; return whatever survived (then killed)."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.api("/api/shutdown", method="POST")  # stops the kernels, then exits
                self.process.wait(SHUTDOWN)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.process is not None:
            try:  # the server's process group: the server and anything sharing its group
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait(SHUTDOWN)
        # Kernels run in sessions of their own: find them (and their children) by marker.
        try:
            wait_until("the kernels to exit", lambda: not marked_processes(self.marker), 30)
        except AssertionError:
            pass
        survivors = marked_processes(self.marker)
        for pid in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return survivors


@pytest.fixture
def lab(tmp_path) -> Iterator[Lab]:
    """JupyterLab on a free loopback port with everything it writes kept in ``tmp_path``."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the browser test finds leftover processes through /proc (Linux only)")
    home = tmp_path / "home"
    dirs = {
        "HOME": home,
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "JUPYTER_CONFIG_DIR": tmp_path / "jupyter" / "config",
        # The user data dir only: the labextensions (jupyterlab-manager, anywidget,
        # jupyterlab-plotly) are in sys.prefix/share/jupyter, which stays on the data path.
        "JUPYTER_DATA_DIR": tmp_path / "jupyter" / "data",
        "JUPYTER_RUNTIME_DIR": tmp_path / "jupyter" / "runtime",
        "IPYTHONDIR": tmp_path / "jupyter" / "ipython",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    # No "Would you like to get notified about official Jupyter news?" toast.
    labconfig = dirs["JUPYTER_CONFIG_DIR"] / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    env = {k: v for k, v in os.environ.items() if k != REDIS_URL_ENV}  # a throwaway Redis
    env.update({name: str(path) for name, path in dirs.items()})
    marker = secrets.token_hex(8)
    env.update(
        {MARKER: marker, "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    )
    root = tmp_path / "root"
    root.mkdir()

    for _attempt in range(3):  # a free port can be taken before the server binds it
        server = Lab(
            root=root,
            port=free_port(),
            token=secrets.token_hex(24),
            marker=marker,
            log=tmp_path / "jupyter-lab.log",
            env=env,
        )
        try:
            server.start()
            break
        except RuntimeError:
            server.stop()
            if "already in use" not in server.log_tail():
                raise
    else:
        pytest.fail(f"jupyter lab found no free port:\n{server.log_tail()}")
    try:
        yield server
    finally:
        survivors = server.stop()
        assert not survivors, f"processes left behind (killed now): {survivors}"
        assert not marked_processes(marker), "processes survived SIGKILL"


# --- the browser -------------------------------------------------------------------------

# One snapshot of the notebook: kernel status, and per code cell its prompt and outputs.
NOTEBOOK_STATE_JS = """
panel => {
    const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    return {
        status: indicator ? indicator.dataset.status : null,
        cells: [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell => {
            const prompt = cell.querySelector('.jp-InputPrompt');
            const outputs = cell.querySelector('.jp-OutputArea');
            const stderr = [...cell.querySelectorAll(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')];
            return {
                prompt: prompt ? prompt.textContent.trim() : '',
                text: outputs ? outputs.textContent : '',
                stderr: stderr.map(e => e.textContent).filter(t => t.trim()),
                errorWidgets: cell.querySelectorAll('.jupyter-widgets-error-widget').length,
            };
        }),
    };
}
"""

# Each Indicator of a plotly figure as [title, number].
INDICATORS_JS = """
plot => [...plot.querySelectorAll('g.trace')]
    .filter(g => g.querySelector('text.number'))
    .map(g => [
        (g.querySelector('text.title') || {textContent: ''}).textContent.trim(),
        g.querySelector('text.number').textContent.trim(),
    ])
"""

SI = {"y": -24, "z": -21, "a": -18, "f": -15, "p": -12, "n": -9, "µ": -6, "m": -3, "": 0}
SI.update({"k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18, "Z": 21, "Y": 24})


def parse_si(text: str) -> float:
    """``"30.4k B/s"`` -> 30400.0: a number as plotly's ``~s`` format writes it."""
    match = re.match(r"([-−]?[\d.,]+(?:e[-+]?\d+)?)\s*([yzafpnµmkMGTPEZY]?)", text.strip())
    assert match, f"not a number: {text!r}"
    number = float(match.group(1).replace("−", "-").replace(",", ""))
    return number * 10 ** SI[match.group(2)]


@dataclass
class LabPage:
    """One Chromium page on JupyterLab, with what it logged."""

    page: Any
    lab: Lab
    artifacts: Path
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)

    def record(self) -> None:
        def on_console(message) -> None:
            if message.type == "error":
                self.console_errors.append(f"console.error: {message.text}")

        def on_request(request) -> None:
            if not request.url.startswith((self.lab.base, "data:", "blob:", "about:")):
                self.external_requests.append(request.url)

        self.page.on("console", on_console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        self.page.on("request", on_request)

    def evidence(self) -> str:
        """Save a screenshot and the page's HTML; say where they and the server log are."""
        shot, html = self.artifacts / "failure.png", self.artifacts / "failure.html"
        try:
            self.page.screenshot(path=str(shot))
            html.write_text(self.page.content())
        except Exception as exc:  # the page may be gone; the log still helps
            shot = f"(no screenshot: {exc})"
        return (
            f"\nscreenshot: {shot}\npage HTML: {html}\nserver log: {self.lab.log}"
            f"\nconsole errors: {self.console_errors}\nlast server log lines:\n"
            f"{self.lab.log_tail(15)}"
        )

    def menu(self, menu: str, command: str) -> None:
        """Click ``menu`` in the menu bar, then the item that runs JupyterLab ``command``."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{menu}$")).click()
        item = self.page.locator(f'.lm-Menu-item[data-command="{command}"]')
        item.wait_for(state="visible")
        assert "lm-mod-disabled" not in (item.get_attribute("class") or ""), (
            f"{menu} > {item.inner_text()} is disabled"
        )
        item.click()


def run_course_notebook(view: LabPage, notebook: Path, code_cells: list[str]) -> None:
    """Open, Run All, check the outputs, move a slider, check the figure followed."""
    from playwright.sync_api import expect

    page, lab = view.page, view.lab
    page.goto(f"{lab.base}/lab/tree/{notebook.as_posix()}?token={lab.token}")

    # The bundled extensions that draw widgets and figures are loaded.
    config = json.loads(page.locator("#jupyter-config-data").text_content())
    loaded = {ext["name"] for ext in config.get("federated_extensions", [])}
    missing = {"@jupyter-widgets/jupyterlab-manager", "anywidget", "jupyterlab-plotly"} - loaded
    assert not missing, f"labextensions not found on the data path: {missing}"

    panel = page.locator(".jp-NotebookPanel").filter(visible=True)
    panel.wait_for(state="visible", timeout=KERNEL_IDLE * 1000)
    assert panel.count() == 1, f"expected one open notebook, found {panel.count()}"

    def kernel_idle() -> bool:
        sessions = lab.api("/api/sessions")
        ours = [s for s in sessions if s["path"] == notebook.as_posix()]
        if not ours or ours[0]["kernel"]["execution_state"] != "idle":
            return False
        return panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').count() == 1

    def dialog() -> str:
        dialogs = page.locator(".jp-Dialog")
        return f" (a dialog is open: {dialogs.first.inner_text()!r})" if dialogs.count() else ""

    try:
        wait_until("the notebook's kernel to start and be idle", kernel_idle, KERNEL_IDLE)
    except AssertionError as exc:
        raise AssertionError(f"{exc}{dialog()}") from None

    def state() -> dict:
        return panel.element_handle().evaluate(NOTEBOOK_STATE_JS)

    # The notebook attaches its cells progressively (windowing): wait for all of them.
    wait_until(
        f"the page to show the notebook's {len(code_cells)} code cells",
        lambda: len(state()["cells"]) == len(code_cells),
        KERNEL_IDLE,
    )
    # Stored outputs carry stored prompt numbers: clear them so that numbers prove a run.
    view.menu("Edit", "editmenu:clear-all")
    wait_until(
        "the stored outputs to clear",
        lambda: all(not re.search(r"\d", c["prompt"]) for c in state()["cells"]),
        30,
    )

    view.menu("Run", "runmenu:run-all")
    to_run = [i for i, source in enumerate(code_cells) if source.strip()]  # empty: never run

    def all_ran() -> dict | None:
        snapshot = state()
        failed = [
            (i, c["prompt"], c["stderr"]) for i, c in enumerate(snapshot["cells"]) if c["stderr"]
        ]
        assert not failed, f"a cell wrote to stderr or raised: {failed}"
        prompts = [snapshot["cells"][i]["prompt"] for i in to_run]
        done = all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
        return snapshot if done and snapshot["status"] == "idle" else None

    try:
        snapshot = wait_until("Run All Cells to finish", all_ran, RUN_ALL)
    except AssertionError as exc:
        prompts = [c["prompt"] for c in state()["cells"]]
        raise AssertionError(f"{exc}; prompts now {prompts}{dialog()}") from None
    numbers = [int(snapshot["cells"][i]["prompt"].strip("[]:")) for i in to_run]
    assert numbers == sorted(set(numbers)), f"cells ran out of order: {numbers}"

    # Every widget rendered: none still loading, none an error.
    def widgets_rendered() -> dict | None:
        snapshot = state()
        texts = [c["text"] for c in snapshot["cells"]]
        return None if any("Loading widget..." in t for t in texts) else snapshot

    snapshot = wait_until("the widgets to render", widgets_rendered, WIDGET_RENDER)
    check_outputs(snapshot)

    # The capacity explorer: sliders in a grid above one plotly figure of Indicators.
    label = capacity.params[SLIDER].label
    explorer = panel.locator(".widget-vbox:has(> .widget-gridbox):has(.js-plotly-plot)").filter(
        has=page.locator(".widget-gridbox .widget-label", has_text=label)
    )
    explorer.first.wait_for(state="visible", timeout=WIDGET_RENDER * 1000)
    explorer = explorer.first
    explorer.scroll_into_view_if_needed()
    plot = explorer.locator(".js-plotly-plot")
    titles = [title for _, title, _ in TILES]

    def indicators() -> dict[str, str] | None:
        pairs = plot.element_handle().evaluate(INDICATORS_JS)
        shown = dict(pairs)
        return shown if [t for t, _ in pairs] == titles and all(shown.values()) else None

    before = wait_until(f"the explorer's {len(titles)} numbers", indicators, WIDGET_RENDER)

    # Type a new value into the slider's readout, as a learner can.
    readout = explorer.locator(".widget-slider", has=page.locator(".widget-label", has_text=label))
    readout = readout.locator(".widget-readout")
    old_value = float(readout.inner_text())
    low, high = capacity.params[SLIDER].min, capacity.params[SLIDER].max
    new_value = old_value / 10 if old_value / 10 >= low else min(old_value * 10, high)
    typed = f"{new_value:.3g}"
    readout.fill(typed)  # focus, select all, type: the readout is contenteditable
    expect(readout).to_have_text(typed)
    readout.press("Enter")

    try:
        after = wait_until(
            f"the figure to change after setting {label!r} to {new_value:.3g}",
            lambda: (shown := indicators()) and shown != before and shown,
            FIGURE_UPDATE,
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; numbers before: {before}; the explorer shows: {explorer.inner_text()!r}"
        ) from None
    shown_value = float(readout.inner_text())
    assert math.isclose(shown_value, new_value, rel_tol=0.01), (
        f"the readout shows {shown_value}, typed {new_value:.3g}"
    )
    # Average requests/s is proportional to daily active users: the figure shows the new
    # estimate, not just some other numbers (3 significant digits on each side).
    ratio = parse_si(after[AVERAGE_QPS_TITLE]) / parse_si(before[AVERAGE_QPS_TITLE])
    assert math.isclose(ratio, shown_value / old_value, rel_tol=0.02), (
        f"{AVERAGE_QPS_TITLE}: {before[AVERAGE_QPS_TITLE]} -> {after[AVERAGE_QPS_TITLE]}, "
        f"but {label} went {old_value:g} -> {shown_value:g}"
    )

    # A sentinel: run the first code cell again (Run > Run Selected Cell). The kernel takes
    # requests in order, so once it has run, whatever the slider's callback printed or
    # raised (widget callbacks print to JupyterLab's log console) has reached the page.
    first = to_run[0]
    cell = panel.locator(".jp-Notebook .jp-CodeCell").nth(first)
    cell.locator(".jp-InputPrompt").click()
    expect(cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
    view.menu("Run", "notebook:run-cell")

    def sentinel_ran() -> dict | None:
        snapshot = state()
        prompt = re.fullmatch(r"\[(\d+)\]:", snapshot["cells"][first]["prompt"])
        ran = prompt and int(prompt.group(1)) > max(numbers) and snapshot["status"] == "idle"
        return snapshot if ran else None

    snapshot = wait_until("the first code cell to run again", sentinel_ran, KERNEL_IDLE)
    check_outputs(snapshot)
    log_console = page.locator(".jp-LogConsoleStatusItem").filter(visible=True)
    if log_console.count():
        log_console.first.click()  # open the log console to show what it says
        messages = page.locator(".jp-LogConsolePanel").first
        messages.wait_for(state="visible")
        raise AssertionError(
            "JupyterLab's log console has messages (a widget callback printed or raised):\n"
            f"{messages.text_content()[-3000:]}"
        )
    assert "⚠" not in explorer.inner_text(), f"the explorer reports: {explorer.inner_text()}"


def check_outputs(snapshot: dict) -> None:
    for i, cell in enumerate(snapshot["cells"]):
        where = f"code cell {i + 1} {cell['prompt']}"
        assert not cell["stderr"], f"{where} wrote to stderr or raised: {cell['stderr']}"
        assert not cell["errorWidgets"], f"{where} shows a widget error: {cell['text'][:500]}"
        for text in ERROR_TEXTS:
            assert text not in cell["text"], f"{where} shows {text!r}: {cell['text'][:500]}"


@pytest.fixture
def sync_api():
    """Playwright's sync API and Chromium, checked before any server starts."""
    require_binary(CHROMIUM.is_file(), f"Chromium ({CHROMIUM})", "chromium")
    try:
        from playwright import sync_api
    except ImportError:
        if on_ci():
            pytest.fail("playwright is not installed, but CI=true: pip install -e '.[test]'")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return sync_api


def test_first_notebook_runs_and_its_explorer_reacts(sync_api, lab, tmp_path):
    import nbformat

    source = ROOT / NOTEBOOK
    assert source.is_file(), f"{NOTEBOOK} is missing: the browser test opens the real notebook"
    shutil.copytree(
        ROOT / "notebooks",
        lab.root / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    nb = nbformat.read(source, as_version=4)
    code_cells = [cell.source for cell in nb.cells if cell.cell_type == "code"]

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            env=lab.env,  # HOME in tmp_path too, and the marker (on the main browser process)
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            view = LabPage(context.new_page(), lab, tmp_path)
            view.page.set_default_timeout(60_000)
            view.record()
            try:
                run_course_notebook(view, NOTEBOOK, code_cells)
                assert not view.console_errors, f"the page logged errors: {view.console_errors}"
                assert not view.external_requests, (
                    f"the page tried to leave 127.0.0.1: {view.external_requests}"
                )
            except Exception as exc:
                raise AssertionError(f"{exc}{view.evidence()}") from exc
        finally:
            browser.close()
