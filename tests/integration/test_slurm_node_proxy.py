"""On the test cluster (one node, `vm`): the array elements on a node share one endpoint proxy, started
by the first, stopped after the last and by `launcher kill`; a stale port file and a dead proxy's
container do not break the next submission (launcher.proxy.node, slurm/node_proxy.py)."""

import json
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from helpers import invocation_of, jobs, wait_for
from test_slurm import proxies_of, slurm_cluster  # noqa: F401 - the fixture

from launcher.catalog import TOOLS_IMAGE
from launcher.store.layout import LABEL_INVOCATION

TASKS = "evaluation.tasks=[launcher.gsm8k_cot_zeroshot,launcher.aime2025]"


def containers(inv: str) -> list[str]:
    argv = ["docker", "ps", "-aq", "--filter", f"label={LABEL_INVOCATION}={inv}"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def node_proxies(folder: Path) -> list[Path]:
    """The state folders of the proxies started on the nodes, one per start (<node>/<starter's job id>)."""
    return sorted(p for p in (folder / "proxy/nodes").glob("*/*") if p.is_dir())


def run(cli, ep, tmp_path, *more, **kw):
    return cli(
        "execution=slurm",
        f"target.api_endpoint.url={ep.url()}",
        f"execution.output_dir={tmp_path}/out",
        TASKS,
        "evaluation.params.parallelism=2",
        *more,
        **kw,
    )


def test_two_elements_on_the_node_share_one_proxy_stopped_after_the_last(
    cli,
    endpoint,
    harness_image,
    tmp_path,
    slurm_cluster,  # noqa: F811
):
    ep = endpoint("oracle", latency=1.0)  # 10 samples at parallelism 2: each element runs for 5 s or more
    proc = run(cli, ep, tmp_path, "evaluation.params.limit_samples=10", "--wait")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    inv = invocation_of(proc)
    state = jobs(cli, inv)
    folders = [Path(j["folder"]) for j in state.values()]
    folder = folders[0].parent
    ports = {urlsplit(json.loads((f / "results/run_config.json").read_text())["url"]).port for f in folders}
    assert len(ports) == 1  # both tasks name the node's proxy
    (started,) = node_proxies(folder)  # started once, by the first element
    log = (folder / "logs/proxy-vm.log").read_text()
    assert log.count("=== ") == 1 and "start (array element" in log, log
    wait_for(lambda: not proxies_of(folder) and not containers(inv), timeout=30, what="the proxy to stop")
    counters = json.loads((started / "proxy_stats.json").read_text())
    total = sum(j["done"] for j in state.values())
    assert counters["requests"] == total == ep.stats()["total"] > 0  # both tasks through it
    detail = cli("status", inv, "--detail", check_rc=0).stdout
    assert f"1 proxies, {total} req" in detail


def test_kill_stops_the_nodes_proxy_and_a_dead_proxys_leftovers_do_not_break_the_resume(
    cli,
    endpoint,
    harness_image,
    tmp_path,
    slurm_cluster,  # noqa: F811
):
    ep = endpoint("oracle", latency=0.1)
    proc = run(cli, ep, tmp_path, "evaluation.params.limit_samples=200", check_rc=0)
    inv = invocation_of(proc)
    wait_for(lambda: (jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["done"] or 0) >= 10, what="progress")
    folder = Path(jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["folder"]).parent
    (first,) = node_proxies(folder)
    cli("kill", inv, check_rc=0)
    wait_for(lambda: not proxies_of(folder) and not containers(inv), timeout=30, what="no proxy after kill")
    # What a proxy that died hard leaves: its port file, and its container, stopped but not removed.
    port = (first / "proxy.port").read_text()
    (folder / "proxy/nodes/vm/4242").mkdir()
    (folder / "proxy/nodes/vm/4242/proxy.port").write_text(port)
    name = f"launcher-{inv}-proxy"
    argv = ["docker", "create", "--name", name, "--label", f"{LABEL_INVOCATION}={inv}", TOOLS_IMAGE, "true"]
    subprocess.run(argv, check=True, capture_output=True)
    try:
        assert cli("resume", inv, "--wait").returncode == 0
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    state = jobs(cli, inv)
    assert {j["state"] for j in state.values()} == {"SUCCEEDED"}
    log = (folder / "logs/proxy-vm.log").read_text()
    assert len(node_proxies(folder)) >= 3, log  # the first run's, the planted one, the resume's
    wait_for(lambda: not proxies_of(folder) and not containers(inv), timeout=30, what="no proxy at the end")


def batch_scripts(array_job: str) -> list[int]:
    """The running element scripts (slurmd's `slurm_script`) of one array job."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            script = proc.name.isdigit() and b"slurm_script" in (proc / "cmdline").read_bytes()
            if script and f"SLURM_ARRAY_JOB_ID={array_job}\0".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_elements_killed_hard_leave_no_proxy_behind(cli, endpoint, harness_image, tmp_path, slurm_cluster):  # noqa: F811
    """SIGKILL (a crash, or Slurm's after KillWait): no EXIT trap runs, but the proxy's container is the
    docker daemon's; once no element process holds its lease it stops itself."""
    ep = endpoint("oracle", latency=0.1)
    proc = run(cli, ep, tmp_path, "evaluation.params.limit_samples=200", check_rc=0)
    inv = invocation_of(proc)
    wait_for(lambda: (jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["done"] or 0) >= 10, what="progress")
    folder = Path(jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["folder"]).parent
    scripts = batch_scripts((folder / "slurm_jobs").read_text().split()[0])
    assert len(scripts) == 2
    for pid in scripts:
        os.kill(pid, signal.SIGKILL)
    proxy = ["docker", "ps", "-q", "--filter", f"name=launcher-{inv}-proxy"]
    gone = lambda: not subprocess.run(proxy, capture_output=True, text=True).stdout.strip()  # noqa: E731
    wait_for(gone, timeout=120, what="the proxy to stop by itself")
    log = (folder / "logs/proxy-vm.log").read_text()
    assert "no array element on this node uses the proxy any more: stopping" in log
    cli("kill", inv)  # the task containers, if their clients died too, are stopped by label
    wait_for(lambda: not containers(inv), timeout=60, what="the task containers to stop")
