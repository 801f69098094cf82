"""The HTML report in real headless chromium: renders without console errors, shows the right numbers,
filtering to wrong samples shows the expected count, 10,000 samples stay usable; a screenshot is kept."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from cdp import Browser, chromium_binary, open_page
from export_fixtures import invocation
from helpers import unavailable

from launcher.export import source
from launcher.report.html import write_report


@pytest.fixture
def browser(tmp_path):
    binary = chromium_binary()
    if not binary:
        unavailable("chromium is not installed", "`make test` runs scripts/ensure-chromium.sh")
    b = Browser(binary, tmp_path / "profile")
    yield b
    b.close()


def set_input(element: str, value: str, event: str) -> str:
    """JS that sets a control the way a user does: new value, then the event the page listens to."""
    return (
        f"(() => {{ const e = document.getElementById('{element}'); e.value = '{value}'; "
        f"e.dispatchEvent(new Event('{event}')); }})()"
    )


def drive(browser, url: str, steps):
    import aiohttp

    async def main():
        async with aiohttp.ClientSession() as session:
            page, pump = await open_page(browser.port, session, url)
            try:
                await page.wait_for("document.body && document.body.dataset.ready === '1'")
                return await steps(page), page.errors
            finally:
                pump.cancel()
                await page.ws.close()

    return asyncio.run(main())


def test_report_renders_numbers_and_filters_wrong_samples(tmp_path, browser):
    a = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True] * 7 + [False] * 3}, errors=2, chance=0.1)
    b = invocation(tmp_path / "runs", "model-b", {"gsm8k": [True] * 2 + [False] * 8})
    runs = source.load([a.invocation_id, b.invocation_id])
    report = tmp_path / "report.html"
    write_report(runs, report)
    job = f"{a.invocation_id}.0"

    async def steps(page):
        table = await page.evaluate(
            "[...document.querySelectorAll('#scores tbody tr')].map(r => "
            "[r.dataset.job, r.querySelector('.value').textContent, r.querySelector('.stderr').textContent])"
        )
        count_all = await page.evaluate("document.getElementById('count').dataset.count")
        await page.evaluate(set_input("filter", "wrong", "change"))
        count_wrong = await page.evaluate("document.getElementById('count').dataset.count")
        shown = await page.evaluate("document.querySelectorAll('#samples .sample.wrong').length")
        svgs = await page.evaluate("document.querySelectorAll('svg.plot').length")
        await page.screenshot(tmp_path / "report.png")
        return table, count_all, count_wrong, shown, svgs

    (table, count_all, count_wrong, shown, svgs), errors = drive(
        browser, f"{report.as_uri()}#job={job}", steps
    )
    assert errors == []
    expected = {r.job_id: r.scores[0] for r in runs}
    assert {row[0] for row in table} == set(expected)
    for job_id, value, stderr in table:
        assert value == f"{expected[job_id].value:.4f}" and stderr == f"{expected[job_id].stderr:.4f}"
    assert table[0][1] == f"{7 / 12:.4f}"  # 7 right of 12: the 2 errored samples score 0
    assert (count_all, count_wrong, shown) == ("12", "5", 5)  # 3 wrong + 2 errors
    assert svgs == 1
    assert (tmp_path / "report.png").stat().st_size > 10_000
    shutil.copy(tmp_path / "report.png", tmp_path / "report-screenshot.png")


def test_report_with_10000_samples_pages_and_searches(tmp_path, browser):
    outcomes = [i % 4 != 0 for i in range(10_000)]  # every 4th wrong: 2,500 wrong
    a = invocation(tmp_path / "runs", "model-a", {"big": outcomes})
    report = tmp_path / "big.html"
    write_report(source.load([a.invocation_id]), report)

    async def steps(page):
        rendered = await page.evaluate("document.querySelectorAll('#samples .sample').length")
        await page.evaluate(set_input("filter", "wrong", "change"))
        wrong = await page.evaluate("document.getElementById('count').dataset.count")
        await page.evaluate(set_input("search", "s9996", "input"))
        found = await page.wait_for(
            "document.getElementById('count').dataset.count === '1' && "
            "document.querySelector('#samples .sample').textContent"
        )
        return rendered, wrong, found

    (rendered, wrong, found), errors = drive(browser, report.as_uri(), steps)
    assert errors == []
    assert rendered == 50  # one page rendered, not 10,000 nodes
    assert wrong == "2500"
    assert "#s9996" in found
