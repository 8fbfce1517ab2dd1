"""Browser fixtures: Debian's Chromium driven by Playwright, against pytest-django's live_server.

Playwright's own browser download does not work here, so the tests use /usr/bin/chromium
(`make chromium` installs it). Without it the tests skip locally; with CI=true a skipped
browser test is turned into a failure, so CI cannot pass without having driven a browser.

Every page runs under the Content-Security-Policy of config.settings: a test whose pages
cause a CSP violation (an inline script, a style attribute, a foreign resource) fails, even if
its own assertions pass. Use the `page` fixture, or `new_context(browser)` for a second
browser context (another user), and the check comes with it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
# thread with a running loop unless told that this is deliberate (fixtures and assertions).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    report = yield
    if report.skipped and _in_ci() and item.get_closest_marker("browser"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = (
            f"browser test skipped while CI is set, which counts as a failure: {reason}"
        )
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"{CHROMIUM} is missing: run `make chromium` to install Debian's Chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield WatchedBrowser(chromium)
        chromium.close()


class CSPWatch:
    """Collects the CSP violations Chromium reports in one browser context.

    Chromium reports each blocked script, style or resource as a console error starting
    "Refused to …" that names the Content Security Policy directive; the context-level
    console event covers every page of the context, popups included.
    """

    def __init__(self) -> None:
        self.violations: list[str] = []

    def __call__(self, message: object) -> None:
        text = message.text
        if message.type == "error" and "Content Security Policy" in text:
            location = message.location or {}
            self.violations.append(f"{location.get('url', '?')}: {text}")

    def check(self) -> None:
        if self.violations:
            pytest.fail(
                "Content-Security-Policy violations (move scripts and styles into static "
                "files):\n" + "\n".join(self.violations),
                pytrace=False,
            )


_csp_watches: list[CSPWatch] = []


def new_context(browser: object, **options: object) -> object:
    """A browser context whose CSP violations fail the current test (checked at teardown by
    the `_fail_on_csp_violations` fixture, which every browser test gets)."""
    browser = getattr(browser, "unwatched", browser)
    context = browser.new_context(**options)
    context.set_default_timeout(10_000)
    watch = CSPWatch()
    context.on("console", watch)
    _csp_watches.append(watch)
    return context


class WatchedBrowser:
    """Playwright's Browser, except that every context it opens is watched for CSP
    violations: a test calling browser.new_context() directly is checked too."""

    def __init__(self, browser: object) -> None:
        self.unwatched = browser

    def new_context(self, **options: object) -> object:
        return new_context(self.unwatched, **options)

    def __getattr__(self, name: str) -> object:
        if name == "new_page":
            raise AttributeError("use browser.new_context().new_page(): it is watched for CSP")
        return getattr(self.unwatched, name)


@pytest.fixture(autouse=True)
def _fail_on_csp_violations() -> Iterator[None]:
    """Every test in tests/browser/: any CSP violation in a context made by new_context (the
    `page` fixture's included) fails it."""
    _csp_watches.clear()
    yield
    watches = list(_csp_watches)
    _csp_watches.clear()
    for watch in watches:
        watch.check()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context per test; a screenshot of the last page is saved whatever the
    outcome, as artifacts/screenshots/<test>.png."""
    context = new_context(browser, viewport={"width": 1100, "height": 800})
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name.replace("/", "_")
    try:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
