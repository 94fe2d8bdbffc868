"""The web page in a real browser: Playwright driving Debian's headless Chromium
against the API on loopback, with the processor and dispatcher running.

A cron task is created through the form (its preview shows the next 5 fire
times as the expression is typed), fires live on the page (the WebSocket feed,
the executions table and the charts), paused, resumed and cancelled.
Screenshots go to the artifacts directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from tests.support.harness import CallbackSink, Pipeline

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (scripts/test-packages.txt lists it)",
)
# No network beyond loopback here: keep Chromium from calling home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 30_000


@pytest.fixture
def page(settings: Settings, pipeline: Pipeline) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    pipeline.start_ready("processor", "dispatcher", "api")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        # The page's Content-Security-Policy stays on: the test shows the page works
        # under it (so it asks nothing of anywhere else).
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        tab = context.new_page()
        tab.goto(f"http://127.0.0.1:{settings.api_port}/")
        tab.fill("#token-input", settings.api_token or "")
        tab.click("#login-form button[type=submit]")
        tab.wait_for_selector("#live.on")
        try:
            yield tab
        finally:
            browser.close()


def create_every_second_task(page: Any, sink: CallbackSink, artifacts: Path, name: str) -> str:
    from playwright.sync_api import expect

    page.click("#new-task")
    # The preview follows the expression as it is typed, in the chosen zone.
    page.fill("#f-timezone", "Europe/Berlin")
    page.fill("#f-cron", "0 9 * * MON-FRI")
    preview = page.locator("#cron-preview li")
    expect(preview).to_have_count(5)
    expect(preview.first).to_contain_text("09:00:00")
    expect(preview.first).to_contain_text("Europe/Berlin")
    # The builder's fields and the expression follow each other.
    expect(page.locator("#cron-fields input[data-field='5']")).to_have_value("MON-FRI")
    page.fill("#cron-fields input[data-field='2']", "7")
    expect(page.locator("#f-cron")).to_have_value("0 7 * * MON-FRI")
    expect(preview.first).to_contain_text("07:00:00")
    page.fill("#f-cron", "0 9 * * FOO")
    expect(page.locator("#preview-error")).to_contain_text("schedule.cron")
    expect(preview).to_have_count(0)
    page.select_option("#f-preset", "* * * * * *")
    expect(preview).to_have_count(5)
    expect(preview.first).not_to_contain_text("09:00:00")
    page.screenshot(path=str(artifacts / "browser-1-form-preview.png"), full_page=True)
    page.fill("#f-name", name)
    page.fill("#f-url", sink.url)
    page.click("#f-submit")
    page.wait_for_selector("#detail:not([hidden]) #d-status.scheduled")
    task_id: str = page.text_content("#d-id") or ""
    assert page.is_visible(f"#tasks tr[data-id='{task_id}']")
    # It fires, and the page shows it live: executions, the feed and the charts.
    page.locator("#executions tbody tr").nth(1).wait_for()
    page.wait_for_selector(f"#feed li:has-text('{name} fired: succeeded')")
    expect(page.locator("#lateness-stats")).to_contain_text("p50")
    page.screenshot(path=str(artifacts / "browser-2-firing-live.png"), full_page=True)
    assert sink.received(), "the target was called"
    return task_id


def cancel(page: Any, artifacts: Path, task_id: str) -> None:
    page.click("#a-cancel")
    page.wait_for_selector("#d-status.cancelled")
    page.wait_for_selector(f"#tasks tr[data-id='{task_id}'] .status.cancelled")
    page.wait_for_selector("#audit li:has-text('cancel by default/admin')")
    page.select_option("#status-filter", "cancelled")
    page.wait_for_selector(f"#tasks tr[data-id='{task_id}']")
    page.screenshot(path=str(artifacts / "browser-3-cancelled.png"), full_page=True)


def test_create_through_the_form_see_it_fire_live_and_cancel(
    page: Any, artifacts_dir: Path
) -> None:
    with CallbackSink() as sink:
        task_id = create_every_second_task(page, sink, artifacts_dir, "browser-tick")
        cancel(page, artifacts_dir, task_id)


def test_pause_and_resume_from_the_page(page: Any, artifacts_dir: Path) -> None:
    with CallbackSink() as sink:
        task_id = create_every_second_task(page, sink, artifacts_dir, "browser-pause")
        page.click("#a-pause")
        page.wait_for_selector("#d-status.paused", timeout=15_000)
        page.wait_for_selector("#audit li:has-text('pause by default/admin')")
        page.screenshot(path=str(artifacts_dir / "browser-4-paused.png"), full_page=True)
        page.click("#a-resume")
        page.wait_for_selector("#d-status.scheduled", timeout=15_000)
        cancel(page, artifacts_dir, task_id)
