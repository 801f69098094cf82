"""The comparison page in real headless chromium: per-task deltas with their interval, and the flip
browser (10,000 flips render one page of 50, filter by kind, search, both responses side by side)."""

from __future__ import annotations

from export_fixtures import invocation
from test_report_browser import browser, drive, set_input  # noqa: F401 - browser is a fixture

from launcher import api
from launcher.export import source
from launcher.report.comparison import write_comparison


def test_comparison_page_with_10000_flips(tmp_path, browser):  # noqa: F811
    n = 20_000
    base_ok = [i % 2 == 0 for i in range(n)]  # even items right in BASE
    cand_ok = [i % 2 == 0 if i < 4_000 else i % 2 == 1 for i in range(n)]  # from 4,000 on: every item flips
    base = invocation(tmp_path / "runs", "model-a", {"gsm8k": base_ok}).invocation_id
    cand = invocation(tmp_path / "runs", "model-b", {"gsm8k": cand_ok}).invocation_id
    compared = api.compare(base, cand)
    page_file = tmp_path / "compare.html"
    flips = write_comparison(compared, source.load([base]), source.load([cand]), page_file)
    assert flips == 16_000

    async def steps(page):
        table = await page.evaluate(
            "[...document.querySelectorAll('#deltas tbody tr')].map(r => [r.dataset.task, "
            "[...r.querySelectorAll('td')].map(td => td.textContent), r.querySelectorAll('svg.ci').length])"
        )
        rendered = await page.evaluate("document.querySelectorAll('#flips .sample').length")
        sides = await page.evaluate("document.querySelectorAll('#flips .sample .pair .side').length")
        await page.evaluate(set_input("kind", "improved", "change"))
        improved = await page.evaluate("document.getElementById('count').dataset.count")
        await page.evaluate(set_input("search", "s19999", "input"))
        found = await page.wait_for(
            "document.getElementById('count').dataset.count === '1' && "
            "document.querySelector('#flips .sample').textContent"
        )
        await page.screenshot(tmp_path / "compare.png")
        return table, rendered, sides, improved, found

    (table, rendered, sides, improved, found), errors = drive(
        browser, f"{page_file.as_uri()}#kind=all", steps
    )
    assert errors == []
    ((task, cells, svgs),) = table
    assert task == "gsm8k" and svgs == 1
    assert cells[:3] == ["gsm8k", "accuracy", "20000"] and cells[8] == "8000/8000/4000"
    assert rendered == 50 and sides == 100  # one page, BASE and CAND side by side
    assert improved == "8000"
    assert "#s19999 · improved · 0 → 1" in found
    assert (
        "BASE · score 0response: The answer is 20000." in found
        and "CAND · score 1response: The answer is 19999." in found
    )
