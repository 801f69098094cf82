"""What we add to NEL's rendering of catalogue tasks, and reading their progress back.

NEL 0.2.6 runs each task container on its own network; ours share the host's, so each catalogue task's
nemo-evaluator adapter server gets a loopback address of its own (ADAPTER_HOST), and behind the endpoint
proxy nemo-evaluator's progress_tracking interceptor is turned on for `status`. Both are opt-in arguments
of render_task: tests/integration/test_nel_parity.py renders them for all 421 tasks, takes exactly them
out and compares with NEL's own dry run.
The real runs (three tasks at once on the host network, progress while running) are
tests/integration/test_catalogue_run.py.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

import pytest
import yaml
from helpers import plan_of

from launcher.catalog import nel
from launcher.catalog.nel import adapter_host, render_task, resolve_nel, with_progress
from launcher.cli.render import _progress, summary
from launcher.config.boundary import to_run_spec
from launcher.errors import ConfigError
from launcher.executors.local import LocalConfig
from launcher.executors.slurm import SlurmConfig
from launcher.model import JobStatus, State
from launcher.proxy import wiring
from launcher.store.results import progress

URL = "http://127.0.0.1:8000/v1/chat/completions"
SINK = "http://127.0.0.1:25000/proxy/progress"
ADDRESS = re.compile(r"^127\.(\d+)\.(\d+)\.(\d+)$")


# ---- the adapter server's address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "invocation, index, expected",
    [
        ("0000abcd", 0, "127.209.185.253"),
        ("0000abcd", 1, "127.209.185.254"),
        ("0000abcd", 2, "127.209.186.1"),  # .255 and .0 endings are skipped
        ("d0f703e5", 0, "127.202.103.31"),
    ],
)
def test_adapter_host_golden(invocation, index, expected):
    assert adapter_host(invocation, index) == expected


def test_adapter_hosts_of_an_invocation_are_distinct_loopback_addresses():
    hosts = [adapter_host("0000abcd", n) for n in range(5000)]
    assert len(set(hosts)) == len(hosts)
    for host in hosts + [adapter_host("x", nel._HOSTS - 1), adapter_host("x", nel._HOSTS)]:
        a, b, c = map(int, ADDRESS.match(host).groups())
        assert 1 <= a <= 254 and 0 <= b <= 255 and 1 <= c <= 254, host
    assert adapter_host("0000abcd", 3) == hosts[3]  # pure: a resume gets the same addresses


# ---- progress tracking in config_ef.yaml -----------------------------------------------------------------


PROGRESS_ON = {"use_progress_tracking": True, "progress_tracking_url": SINK}


@pytest.mark.parametrize(
    "adapter_config, expected",
    [
        (None, PROGRESS_ON),
        ({}, PROGRESS_ON),
        ({"use_caching": False}, {"use_caching": False, **PROGRESS_ON}),  # the user's flat keys stay
        (
            {"use_progress_tracking": True, "progress_tracking_url": "http://x/p"},
            {"use_progress_tracking": True, "progress_tracking_url": "http://x/p"},
        ),
        ({"use_progress_tracking": False}, {"use_progress_tracking": False}),  # the user said no
        # an interceptor list cannot be mixed with flat keys in nemo-evaluator 0.2.8: left as written
        ({"interceptors": [{"name": "endpoint"}]}, {"interceptors": [{"name": "endpoint"}]}),
    ],
)
def test_with_progress(adapter_config, expected):
    cfg = {"config": {"type": "t"}}
    if adapter_config is not None:
        cfg["target"] = {"api_endpoint": {"adapter_config": adapter_config}}
    with_progress(cfg, SINK)
    assert cfg["target"]["api_endpoint"]["adapter_config"] == expected
    assert cfg["config"] == {"type": "t"}


def test_render_task_differs_from_nel_s_only_by_what_we_ask_for():
    task = resolve_nel("simple_evals.gpqa_diamond")
    kw = dict(url=URL, model_id="m", api_key_name="MY_KEY", env_names=("HF_TOKEN",))
    as_nel = render_task(task, None, **kw)
    ours = render_task(task, None, **kw, adapter_host="127.1.2.3", progress_url=SINK)
    assert ours.env == {**as_nel.env, "ADAPTER_HOST": "127.1.2.3", "ADAPTER_SERVER_THREADS": "128"}
    assert (ours.argv, ours.env_names, ours.image) == (as_nel.argv, as_nel.env_names, as_nel.image)
    theirs, mine = (
        yaml.safe_load(as_nel.files["config_ef.yaml"]),
        yaml.safe_load(ours.files["config_ef.yaml"]),
    )
    assert mine["target"]["api_endpoint"].pop("adapter_config") == PROGRESS_ON
    assert mine == theirs
    # a user's own ADAPTER_HOST (passed from the host or as lit:) wins over ours
    user = render_task(task, None, **{**kw, "env_names": ("ADAPTER_HOST",)}, adapter_host="127.1.2.3")
    assert "ADAPTER_HOST" not in user.env and "ADAPTER_HOST" in user.env_names
    threads = render_task(task, None, **{**kw, "env_names": ("ADAPTER_SERVER_THREADS",)}, adapter_host="1")
    assert "ADAPTER_SERVER_THREADS" not in threads.env


@pytest.mark.parametrize(
    ("params", "threads"),
    [({}, "128"), ({"parallelism": 10}, "128"), ({"parallelism": 200}, "216"), ({"parallelism": "x"}, "128")],
)
def test_the_adapter_server_starts_threads_for_its_parallelism_not_nemo_evaluator_s_2048(params, threads):
    task = resolve_nel("simple_evals.gpqa_diamond")
    cfg = {"config": {"params": params}}
    ours = render_task(task, cfg, url=URL, model_id="m", adapter_host="127.1.2.3")
    assert ours.env["ADAPTER_SERVER_THREADS"] == threads


# ---- through the local executor's plan -------------------------------------------------------------------


def plan(proxy: bool = True, env_vars: dict | None = None, slurm: bool = False, **endpoint_extra):
    endpoint = {"url": URL, "model_id": "m", "proxy": proxy, **({"proxy_port": 21000} if slurm else {})}
    endpoint.update(endpoint_extra)
    tasks = [
        {"name": "simple_evals.gpqa_diamond"},
        {"name": "simple_evals.mmlu_pro"},
        {"name": "custom", "container": "img:1", "command": ["eval"]},
    ]
    data = {
        "execution": {"output_dir": "/data/evals", "user": "1000:1000"},
        "target": {"api_endpoint": endpoint},
        "evaluation": {"tasks": tasks, "env_vars": env_vars or {}},
    }
    if slurm:
        spec = to_run_spec(data, "slurm", SlurmConfig)
        return plan_of(spec)
    spec = to_run_spec(data, "local", LocalConfig)
    return plan_of(spec)


def docker_env(p, folder: str) -> dict[str, str]:
    (line,) = [ln for ln in p.files[f"{folder}/run.sh"].splitlines() if " docker run " in f" {ln}"]
    argv = shlex.split(line.split(" >> ")[0])
    argv = argv[argv.index("docker") :]  # after `VAR=... container` (run.sh's own client wrapper)
    return dict(argv[i + 1].partition("=")[::2] for i, a in enumerate(argv) if a == "-e")


def test_plan_gives_each_catalogue_task_its_own_adapter_host_and_progress_behind_the_proxy():
    p = plan()
    folders = [j.folder for j in p.jobs]
    hosts = [docker_env(p, f).get("ADAPTER_HOST") for f in folders]
    assert hosts == [adapter_host("0000abcd", 0), adapter_host("0000abcd", 1), None]  # not the custom task
    port = wiring.port_for("0000abcd")
    for folder in folders[:2]:
        cfg = yaml.safe_load(p.files[f"{folder}/results/config_ef.yaml"])
        assert cfg["target"]["api_endpoint"]["adapter_config"] == {
            "use_progress_tracking": True,
            "progress_tracking_url": f"http://127.0.0.1:{port}/proxy/progress",
        }
        assert cfg["target"]["api_endpoint"]["url"] == f"http://127.0.0.1:{port}/v1/chat/completions"


def test_on_slurm_each_element_s_progress_goes_to_its_node_s_proxy():
    p = plan(slurm=True)  # docker: the elements on a node share one proxy (executors/slurm/node_proxy.py)
    for n, job in enumerate(p.jobs[:2]):
        cfg = yaml.safe_load(p.files[f"{job.folder}/results/config_ef.yaml"])
        adapter = cfg["target"]["api_endpoint"]["adapter_config"]
        assert adapter["progress_tracking_url"] == "http://127.0.0.1:21000/proxy/progress"
        assert docker_env(p, job.folder)["ADAPTER_HOST"] == adapter_host("0000abcd", n)


def test_plan_without_the_proxy_has_no_progress_sink_so_no_progress_tracking():
    p = plan(proxy=False)
    folder = p.jobs[0].folder
    cfg = yaml.safe_load(p.files[f"{folder}/results/config_ef.yaml"])
    assert "adapter_config" not in cfg["target"]["api_endpoint"]
    assert docker_env(p, folder)["ADAPTER_HOST"] == adapter_host("0000abcd", 0)


def test_a_users_adapter_host_wins():
    p = plan(env_vars={"ADAPTER_HOST": "lit:127.9.9.9"})
    assert docker_env(p, p.jobs[0].folder)["ADAPTER_HOST"] == "127.9.9.9"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "node1"])
def test_a_users_adapter_host_beyond_loopback_is_one_line(host):
    """N1: nemo-evaluator's adapter server forwards whatever reaches it to the endpoint (or the proxy):
    its address stays on the host's loopback, proxy on or off."""
    for proxy in (True, False):
        with pytest.raises(ConfigError, match=r"env_vars.ADAPTER_HOST: .* beyond this host"):
            plan(proxy=proxy, env_vars={"ADAPTER_HOST": f"lit:{host}"})


@pytest.mark.parametrize("proxy", [True, False])
def test_behind_the_proxy_the_adapter_presents_its_credential_and_never_holds_the_key(proxy):
    """N1: behind the proxy nemo-evaluator reads API_KEY (api_key_name), which run.sh fills from the
    credential run_all.sh drew; the endpoint's key stays with the proxy. nemo-evaluator's adapter forwards
    the harness's own headers (adapters/interceptors/endpoint_interceptor.py, NVIDIA-NeMo/Evaluator at
    25805c4), so the credential reaches the proxy through it. Without the proxy the key goes by its name,
    as in NEL, and ADAPTER_HOST is a loopback address either way."""
    p = plan(proxy=proxy, env_vars={"API_KEY": "MY_KEY"}, api_key="MY_KEY")
    for job in p.jobs[:2]:
        cfg = yaml.safe_load(p.files[f"{job.folder}/results/config_ef.yaml"])
        assert cfg["target"]["api_endpoint"]["api_key_name"] == ("API_KEY" if proxy else "MY_KEY")
        run_sh = p.files[f"{job.folder}/run.sh"]
        assert ('API_KEY="${LAUNCHER_PROXY_TOKEN}"' in run_sh) is proxy
        assert ("MY_KEY" in run_sh) is not proxy
        assert ipaddress.ip_address(docker_env(p, job.folder)["ADAPTER_HOST"]).is_loopback


# ---- reading progress back -------------------------------------------------------------------------------


def run_config(params: dict, framework: str = "simple_evals") -> str:
    return yaml.safe_dump(
        {"config": {"type": "t", "params": params}, "target": {}, "framework_name": framework}
    )


@pytest.mark.parametrize(
    "count, config, expected",
    [
        (None, None, (None, None)),
        ("3", None, (3, None)),  # before run_config.yml is readable: a count, no total
        ("3", run_config({"limit_samples": 5}), (3, 5)),
        ("3\n", run_config({"limit_samples": 4, "extra": {"n_samples": 2}}), (3, 8)),  # requests: x repeats
        ("3", run_config({"limit_samples": None, "extra": {"n_samples": 5}}), (3, None)),  # whole dataset
        ("3", run_config({"limit_samples": 0.5}), (3, None)),  # a fraction of the dataset
        ("3", run_config({"limit_samples": 5}, "lm-evaluation-harness"), (3, None)),  # requests per sample?
        ("3", "config: [unclosed", (3, None)),
        ("3", "just text", (3, None)),
        ("three", run_config({"limit_samples": 5}), (None, None)),
    ],
)
def test_nel_progress(tmp_path, count, config, expected):
    (tmp_path / "results").mkdir()
    if count is not None:
        (tmp_path / "results/progress").write_text(count)
    if config is not None:
        (tmp_path / "results/run_config.yml").write_text(config)
    assert progress(tmp_path) == expected


def test_our_harness_s_progress_file_comes_first(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results/progress").write_text("9")
    (tmp_path / "results/progress.json").write_text('{"done": 1, "total": 2}')
    assert progress(tmp_path) == (1, 2)


@pytest.mark.parametrize(
    "done, total, shown", [(None, None, ""), (3, None, "3/?"), (3, 8, "3/8"), (0, 8, "0/8")]
)
def test_progress_column(done, total, shown):
    assert _progress(JobStatus("i.0", "t", State.RUNNING, "/x", done=done, total=total)) == shown


def test_watch_summary_adds_only_counts_with_a_total():
    rows = [
        JobStatus("i.0", "a", State.RUNNING, "/x", done=3, total=8),
        JobStatus("i.1", "b", State.RUNNING, "/x", done=50, total=None),  # a catalogue task without a limit
    ]
    assert "samples 3/8" in summary(rows, now=0.0)
