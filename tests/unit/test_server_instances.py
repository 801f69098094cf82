"""NEL 0.2.6 `execution.num_instances` > 1 on the Slurm executor: one model-server instance per node behind
HAProxy. Mapping (tables), the batch script (golden), bash running one element (srun, scontrol and docker
are stubs: no cluster here; the servers' health endpoints are real HTTP servers on 127.0.0.1), and the
rendered haproxy.cfg run by a real HAProxy balancing two real HTTP servers (`make test` installs HAProxy;
only outside it is that test skipped without one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import free_port, plan_of
from test_render import FOLDER, check_golden

from launcher.config.boundary import to_run_spec
from launcher.errors import ConfigError
from launcher.executors.local import LocalConfig
from launcher.executors.slurm import SlurmConfig
from launcher.executors.slurm.deployments import haproxy_config

TASK = {"name": "gsm8k", "container": "img:1", "command": ["eval"]}
VLLM = {
    "type": "vllm",
    "image": "vllm/vllm-openai:v0.8.5",
    "hf_model_handle": "org/model",
    "served_model_name": "m",
    "port": 8000,
    "tensor_parallel_size": 1,
    "endpoints": {"chat": "/v1/chat/completions", "health": "/health"},
}
OWN_URL = {"url": "http://127.0.0.1:8000/v1/chat/completions", "model_id": "m"}


def spec_of(execution, executor="slurm", deployment=None, target=None):
    python = {"launcher_python": sys.executable} if executor == "slurm" else {}
    data = {
        # these scripts run with stand-ins for srun and docker: the proxy with this python, not its image
        "execution": {"output_dir": "/data/evals", "user": "1000:1000", **python, **execution},
        "deployment": deployment or VLLM,
        "target": {"api_endpoint": target or OWN_URL},
        "evaluation": {"tasks": [TASK]},
    }
    return to_run_spec(data, executor, SlurmConfig if executor == "slurm" else LocalConfig)


@pytest.mark.parametrize(
    ("execution", "target", "url", "lb_port"),
    [
        ({"num_nodes": 2, "num_instances": 2}, None, "http://127.0.0.1:5009/v1/chat/completions", 5009),
        (
            {"num_nodes": 3, "num_instances": 3, "proxy": {"config": {"haproxy_port": 6000}}},
            None,
            "http://127.0.0.1:6000/v1/chat/completions",
            6000,
        ),
        # a target of the user's own (not the server's port on 127.0.0.1) is kept, as NEL keeps it
        (
            {"num_nodes": 2, "num_instances": 2},
            {"url": "http://gw:9/v1/chat/completions", "model_id": "m"},
            "http://gw:9/v1/chat/completions",
            5009,
        ),
    ],
)
def test_instances_and_the_tasks_url(execution, target, url, lb_port):
    spec = spec_of(execution, target=target)
    assert spec.deployment.num_instances == execution["num_instances"]
    assert spec.deployment.load_balancer.port == lb_port
    assert spec.target.api_endpoint.url == url


def test_one_instance_changes_nothing():
    spec = spec_of({"num_instances": 1, "proxy": {"type": "haproxy"}})
    assert spec.deployment.num_instances == 1 and spec.target.api_endpoint.url == OWN_URL["url"]


REFUSED = [
    (
        {"num_nodes": 2, "num_instances": 2},
        "local",
        "execution.num_instances: several server instances run on",
    ),
    ({"num_nodes": 3, "num_instances": 2}, "slurm", "execution.num_instances: 2 instances cannot share 3"),
    ({"num_nodes": 2, "num_instances": 2, "proxy": {"type": "nginx"}}, "slurm", "execution.proxy.type: only"),
    (
        {"num_nodes": 2, "num_instances": 2, "proxy": {"config": {"haproxy_port": 8000}}},
        "slurm",
        "execution.proxy.config.haproxy_port: is the server's own port",
    ),
]


@pytest.mark.parametrize(("execution", "executor", "words"), REFUSED, ids=[r[2][:45] for r in REFUSED])
def test_refused_in_one_line(execution, executor, words):
    with pytest.raises(ConfigError) as info:
        spec_of(
            {k: v for k, v in execution.items() if executor == "slurm" or k != "num_nodes"}
            | ({"num_instances": 2} if executor == "local" else {}),
            executor=executor,
        )
    assert str(info.value).startswith(words) and "\n" not in str(info.value)


def test_several_nodes_per_instance_need_a_server_that_spans_nodes():
    words = r"^execution.num_nodes: 2 nodes per instance need a server that spans nodes"
    with pytest.raises(ConfigError, match=words):
        plan_of(spec_of({"num_nodes": 4, "num_instances": 2}))
    with pytest.raises(ConfigError, match=words):
        plan_of(spec_of({"num_nodes": 2}))


def test_sbatch_with_two_instances_behind_haproxy():
    plan = plan_of(spec_of({"num_nodes": 2, "num_instances": 2}))
    batch = plan.files["sbatch.sh"]
    check_golden("sbatch_instances.sh", batch)
    subprocess.run(["bash", "-n"], input=batch, text=True, check=True)
    assert "#SBATCH --nodes=2" in batch and plan.images == ("vllm/vllm-openai:v0.8.5", "haproxy:latest")
    assert "server node2 {NODE_1}:8000 check" in plan.files["haproxy.cfg.in"]
    assert '"$PWD"/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro' in batch


def test_element_starts_instances_then_haproxy_then_the_task(tmp_path):
    port, lb = free_port(), free_port()
    plan = plan_of(
        spec_of(
            {"num_nodes": 2, "num_instances": 2, "proxy": {"config": {"haproxy_port": lb}}},
            deployment={**VLLM, "port": port, "endpoints": {"health": "/"}},
        )
    )
    for rel, text in plan.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text.replace(FOLDER, str(tmp_path)))
    task = tmp_path / plan.jobs[0].folder
    (task / "logs").mkdir(exist_ok=True)
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "docker").write_text(
        f'#!/usr/bin/env bash\ncd {tmp_path}\necho "$*" >> docker.calls\n'
        '[ "$1" = stop ] && touch "stopped-$4"\n'
        'if [ "$1" = run ] && [[ "$7" == *-server-* || "$7" == *-proxy-* ]]; then\n'
        '  until [ -e "stopped-$7" ]; do sleep 0.1; done\nfi\n'
    )
    (stub / "scontrol").write_text("#!/usr/bin/env bash\nprintf '127.0.0.1\\nlocalhost\\n'\n")
    (stub / "srun").write_text(
        f'#!/usr/bin/env bash\necho "$*" >> {tmp_path}/srun.calls\n'
        'while [[ "$1" == --* ]]; do shift; done\nexec "$@"\n'
    )
    for name in ("docker", "scontrol", "srun"):
        (stub / name).chmod(0o755)
    webs = [
        subprocess.Popen([sys.executable, "-m", "http.server", str(p), "--bind", "127.0.0.1"], cwd=tmp_path)
        for p in (port, lb)
    ]
    try:
        env = {
            "PATH": f"{stub}:{os.environ['PATH']}",
            "SLURM_ARRAY_TASK_ID": "0",
            "SLURM_JOB_NODELIST": "n[1-2]",
        }
        proc = subprocess.run(["bash", str(tmp_path / "sbatch.sh")], env=env, timeout=60, capture_output=True)
    finally:
        for web in webs:
            web.terminate()
            web.wait()
    assert proc.returncode == 0, proc.stderr
    assert (
        (task / "haproxy.cfg")
        .read_text()
        .endswith(f"server node1 127.0.0.1:{port} check\n    server node2 localhost:{port} check\n")
    )
    srun = (tmp_path / "srun.calls").read_text()
    assert "--nodelist=127.0.0.1 " in srun and "--nodelist=localhost " in srun
    calls = (tmp_path / "docker.calls").read_text().splitlines()
    runs = [c.split()[6] for c in calls if c.startswith("run")]
    # the instances start together (background steps), then HAProxy once both are ready, then the task
    assert sorted(runs[:2]) == ["launcher-0000abcd-server-0-0", "launcher-0000abcd-server-1-0"]
    assert runs[2:] == ["launcher-0000abcd-proxy-0", "launcher-0000abcd-0"]
    stops = {c.split()[-1] for c in calls if c.startswith("stop")}  # by stop_aux (and each step's trap)
    assert stops == {
        "launcher-0000abcd-proxy-0",
        "launcher-0000abcd-server-0-0",
        "launcher-0000abcd-server-1-0",
    }
    assert all(
        c.startswith("stop") for c in calls[calls.index(next(c for c in calls if "abcd-0 " in c)) + 1 :]
    )
    kinds = [ln.split()[0] for ln in (task / "events.log").read_text().splitlines()]
    assert kinds == ["server-starting", "server-ready", "started", "exited"]


@pytest.mark.skipif(
    not shutil.which("haproxy") and not os.environ.get("LAUNCHER_REQUIRE_DOCKER"),
    reason="haproxy is not installed (make haproxy); under make test it must be",
)
def test_real_haproxy_balances_two_servers_with_the_rendered_config(tmp_path):
    """Two real HTTP servers on the same port of 127.0.0.1 and 127.0.0.2 (two "nodes"), HAProxy with our
    configuration in front: both answer through it, and it waits for their health endpoint."""
    port, lb = free_port(), free_port()
    webs = []
    for host in ("127.0.0.1", "127.0.0.2"):
        root = tmp_path / host
        root.mkdir()
        (root / "health").write_text("ok")
        (root / "who").write_text(host)
        webs.append(
            subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", host], cwd=root)
        )
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config(lb, "/health", 200, [("127.0.0.1", port), ("127.0.0.2", port)]))
    subprocess.run(["haproxy", "-c", "-f", str(cfg)], check=True, capture_output=True)
    proxy = subprocess.Popen(
        ["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        seen = set()
        for _ in range(200):  # until both backends passed their first health check
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{lb}/who", timeout=5) as r:
                    seen.add(r.read().decode())
            except OSError:
                time.sleep(0.1)
            if len(seen) == 2:
                break
        assert seen == {"127.0.0.1", "127.0.0.2"}
    finally:
        proxy.terminate()
        proxy.wait()
        for web in webs:
            web.terminate()
            web.wait()


RAY = {**VLLM, "distributed_executor_backend": "ray", "tensor_parallel_size": 8, "pipeline_parallel_size": 2}


def test_ray_command_starts_a_head_or_joins_it():
    from launcher.config.schema import Deployment
    from launcher.executors.container.server import default_command

    fields = {k: v for k, v in RAY.items() if k not in ("endpoints",)}
    command = default_command(Deployment(**fields))
    lines = [ln.strip() for ln in command.splitlines()]
    ports = next(ln for ln in lines if ln.startswith("ray_ports="))
    assert "--node-manager-port=8266 --object-manager-port=8267" in ports
    assert "ray start --head --port=6379 $ray_ports" in lines
    assert 'until ray start --address="$MASTER_IP:6379" $ray_ports --block; do sleep 5; done' in lines
    serve = next(ln for ln in lines if ln.startswith("vllm serve"))
    assert serve.endswith("--distributed-executor-backend ray") and "--pipeline-parallel-size=2" in serve
    subprocess.run(["bash", "-n"], input=command, text=True, check=True)


def test_sbatch_with_two_ray_instances_of_two_nodes():
    plan = plan_of(spec_of({"num_nodes": 4, "num_instances": 2}, deployment=RAY))
    batch = plan.files["sbatch.sh"]
    check_golden("sbatch_ray_instances.sh", batch)
    subprocess.run(["bash", "-n"], input=batch, text=True, check=True)
    assert "#SBATCH --nodes=4" in batch and batch.count("--ntasks=2 --ntasks-per-node=1") == 2
    assert 'export MASTER_IP="${launcher_ips[2]}"' in batch and "-e MASTER_IP" in batch
    assert '-e "s|{NODE_1}|${launcher_nodes[2]}|"' in batch  # HAProxy: each instance's head node
    assert not {"MASTER_IP", "PROC_ID"} & set(plan.host_env)  # set by the script, not read from the host


def test_one_ray_instance_across_two_nodes_serves_on_this_node():
    plan = plan_of(spec_of({"num_nodes": 2}, deployment=RAY))
    batch = plan.files["sbatch.sh"]
    subprocess.run(["bash", "-n"], input=batch, text=True, check=True)
    assert "haproxy" not in batch and "until aux_http_ok 127.0.0.1 8000 /health; do" in batch
    assert "--nodes=2 --ntasks=2 --ntasks-per-node=1" in batch
