"""`launcher report` of a real run behind the endpoint proxy: the run facts carry the proxy's token counts
and cache hits. Two repeats of each item at temperature 0, one request at a time, send each request twice:
the second is answered from the proxy's cache (the test endpoint counts what reached it)."""

import re

import pytest
from helpers import invocation_of, jobs

pytestmark = pytest.mark.docker


def test_report_shows_proxy_tokens_and_cache_hits(cli, endpoint, harness_image, tmp_path):
    ep = endpoint("oracle")
    proc = cli(
        "execution=local",
        "target=local",
        f"target.api_endpoint.url={ep.url()}",
        f"execution.output_dir={tmp_path}/out",
        "+evaluation.tasks=[launcher.gsm8k_cot_zeroshot]",
        "evaluation.params.limit_samples=5",
        "evaluation.params.repeats=2",
        "evaluation.params.parallelism=1",
        "evaluation.params.temperature=0.0",
        "--wait",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    inv = invocation_of(proc)
    assert jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["state"] == "SUCCEEDED"
    reached = ep.stats()["total"]
    report = tmp_path / "r.html"
    cli("report", inv, "-o", str(report), check_rc=0)
    page = report.read_text()
    hits = re.search(r'data-fact="cache hits"><th>cache hits</th><td>(\d+) of (\d+) requests', page)
    assert hits, page[:3000]
    assert (int(hits[1]), int(hits[2])) == (5, 10) and reached == 5
    tokens = re.search(r'data-fact="proxy tokens"><th>proxy tokens</th><td>([\d,]+) in, ([\d,]+) out', page)
    assert tokens and int(tokens[1].replace(",", "")) > 0 and int(tokens[2].replace(",", "")) > 0
