"""The Slurm executor's plan with the endpoint proxy and auto-export: pure rendering, table and golden tests.
The real runs on the one-node cluster are in tests/integration/test_slurm.py."""

import json
import subprocess

import pytest
from test_render import FOLDER, check_golden

from launcher.config.boundary import to_run_spec
from launcher.errors import ConfigError
from launcher.executors.slurm import EXPORT_BATCH, SlurmConfig, SlurmExecutor
from launcher.proxy import wiring

TASKS = [
    "launcher.gsm8k_cot_zeroshot",
    "launcher.aime2025",
    {"name": "mine", "container": "i:1", "command": ["x"]},
]


def plan(endpoint=None, tasks=TASKS, pending=None, **execution):
    data = {
        "execution": {"output_dir": "/data/evals", "user": "1000:1000", **execution},
        "target": {
            "api_endpoint": {
                "url": "http://10.0.0.5:8000/v1/chat/completions",
                "model_id": "m",
                "api_key": "MY_API_KEY",
                **(endpoint or {}),
            }
        },
        "evaluation": {"tasks": tasks},
        **(pending or {}),
    }
    spec = to_run_spec(data, "slurm", SlurmConfig)
    return SlurmExecutor(spec.execution).plan(spec, "0000abcd", FOLDER, 1767225600.0)


def run_config(p, n: int) -> dict:
    return json.loads(p.files[f"{p.jobs[n].folder}/results/run_config.json"])


@pytest.mark.parametrize(
    ("execution", "shared"),
    [({}, True), ({"container_runtime": "pyxis"}, False), ({"launcher_python": "/opt/py"}, False)],
)
def test_elements_share_their_nodes_proxy_from_docker_else_each_has_its_own_and_none_gets_the_key(
    execution, shared
):
    """A proxy container of the docker daemon outlives the element that started it, so the elements on a
    node share it (one port); a pyxis step or a launcher_python process ends with its element's job."""
    p = plan(endpoint={"proxy_port": 21000}, **execution)
    urls = [run_config(p, n)["url"] for n in range(3)]
    assert urls == [f"http://127.0.0.1:{21000 + n * (not shared)}/v1/chat/completions" for n in range(3)]
    assert {run_config(p, n)["api_key_env"] for n in range(3)} == {"API_KEY"}  # the proxy's credential
    assert {run_config(p, n)["proxied"] for n in range(3)} == {True}  # it times requests upstream
    for job in p.jobs:
        run_sh = p.files[f"{job.folder}/run.sh"]
        assert 'API_KEY="${LAUNCHER_PROXY_TOKEN}"' in run_sh and "MY_API_KEY" not in run_sh
    assert "LAUNCHER_PROXY_TOKEN" not in p.host_env  # drawn by each element's script, not the host's
    assert "MY_API_KEY" in p.host_env  # checked before launch and sent to sbatch: the proxies read it
    assert json.loads(p.files[wiring.CONFIG_FILE])["upstream"] == "http://10.0.0.5:8000/v1/chat/completions"
    batch = p.files["sbatch.sh"]
    port = "proxy_port=21000  # the port" if shared else "proxy_port=$(( 21000 + SLURM_ARRAY_TASK_ID ))"
    assert port in batch and "exec bash" not in batch
    assert ("--node-dir" in batch) is shared and ("flock" in batch) is shared
    python = "/opt/py" if "launcher_python" in execution else "python3"
    assert f"{python} -m launcher.proxy --config {FOLDER}/proxy/proxy.json" in batch
    subprocess.run(["bash", "-n"], input=batch, text=True, check=True)


def test_golden_sbatch_with_the_nodes_shared_proxy():
    check_golden("sbatch_node_proxy.sh", plan(tasks=TASKS[:2]).files["sbatch.sh"])


def test_proxy_off_keeps_the_old_script_and_the_key():
    p = plan(endpoint={"proxy": False})
    assert run_config(p, 0)["api_key_env"] == "API_KEY"
    assert run_config(p, 0)["url"] == "http://10.0.0.5:8000/v1/chat/completions"
    assert "proxied" not in run_config(p, 0)  # the harness times its requests itself
    assert p.files["sbatch.sh"].endswith('exec bash "${tasks[$SLURM_ARRAY_TASK_ID]}/run.sh"\n')
    assert wiring.CONFIG_FILE not in p.files


SSH = {"hostname": "login.example", "remote_output_dir": "/lustre/me/evals"}
AUTO = {"execution": {"auto_export": {"destinations": ["local"]}}, "export": {"local": {"path": "/t.csv"}}}


def proxy_line(batch: str) -> list[str]:
    import shlex

    (line,) = [ln for ln in batch.replace("\\\n", "").splitlines() if "-m launcher.proxy" in ln]
    return shlex.split(line.split(" >> ")[0].replace('"$(id -u):$(id -g)"', "U").replace('"$PWD"', "HERE"))


@pytest.mark.parametrize("runtime", ["docker", "pyxis"])
def test_over_ssh_with_nothing_installed_the_proxy_and_export_run_from_the_tools_image(runtime):
    """No launcher_python: the proxy (and auto-export) run from execution.launcher_image through the
    tasks' runtime; the key and the proxy's credential (drawn by sbatch.sh) go to the proxy's container
    only, by name; the dry run contacts nothing and says what submit will check there."""
    p = plan(pending={"export": AUTO["export"]}, container_runtime=runtime, **AUTO["execution"], **SSH)
    remote = "/lustre/me/evals/2026-01-01-00-00-00-0000abcd"
    argv = proxy_line(p.files["sbatch.sh"])
    tail = ["python3", "-m", "launcher.proxy", "--config", f"{remote}/proxy/proxy.json"]
    assert argv[argv.index("python3") :][:5] == tail
    if runtime == "docker":
        assert argv[:9] == [
            "docker",
            "run",
            "--rm",
            "--init",
            "--pull",
            "never",
            "--name",
            "launcher-0000abcd-proxy",  # the node's, shared by the elements there
            "--sig-proxy=false",  # scancel of the element that started it does not stop it
        ]
        assert ["-v", f"{remote}:{remote}"] == argv[argv.index("-v") : argv.index("-v") + 2]
        names = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
        assert names == ["LAUNCHER_PROXY_TOKEN", "MY_API_KEY"]
        assert argv[argv.index("--user") : argv.index("--user") + 4] == ["--user", "U", "-w", "HERE"]
        assert "launcher-tools:0.1.0" in p.images
    else:
        option = dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)
        assert argv[:3] == ["srun", "--ntasks=1", "--overlap"] and option["--container-env"] == (
            "LAUNCHER_PROXY_TOKEN,MY_API_KEY"
        )
        assert (
            option["--container-image"] == "launcher-tools:0.1.0" and option["--container-workdir"] == "$PWD"
        )
        assert option["--container-mounts"] == f"{remote}:{remote}"
    for job in p.jobs:  # the tasks never get the key; they present the element's credential as API_KEY
        assert "MY_API_KEY" not in p.files[f"{job.folder}/run.sh"]
        assert 'API_KEY="${LAUNCHER_PROXY_TOKEN}"' in p.files[f"{job.folder}/run.sh"]
    export = p.files[EXPORT_BATCH].splitlines()[-1]
    assert export.startswith("exec ") and export.endswith(
        ' python3 -m launcher.export auto "$PWD" < /dev/null'
    )
    assert "launcher-tools:0.1.0" in export
    assert "MY_API_KEY" not in export and "LAUNCHER_PROXY_TOKEN" not in p.files[EXPORT_BATCH]
    assert p.checks[0] == "sbatch, squeue and scancel on login.example"
    assert ("launcher-tools:0.1.0" in " ".join(p.checks)) is (runtime == "docker")
    subprocess.run(["bash", "-n"], input=p.files["sbatch.sh"], text=True, check=True)


def test_the_export_s_container_gets_the_folder_of_an_absolute_local_path():
    from launcher.executors.slurm.tools import export_mounts

    def body(path):
        return json.dumps({"settings": {"local": {"path": path}}})

    assert export_mounts(body("/team/scores/t.csv"), FOLDER) == ("/team/scores",)
    assert export_mounts(body(f"{FOLDER}/x/t.csv"), FOLDER) == export_mounts(body("t.csv"), FOLDER) == ()
    assert export_mounts(body("/t.csv"), FOLDER) == ()  # never / over the image's /
    p = plan(pending={"export": {"local": {"path": "/team/t.csv"}}}, **AUTO["execution"])
    assert "-v /team:/team" in p.files[EXPORT_BATCH]


def test_a_caching_dir_outside_the_invocation_is_mounted_into_the_proxy_s_container():
    p = plan(endpoint={"adapter_config": {"use_caching": True, "caching_dir": "/shared/cache"}})
    argv = proxy_line(p.files["sbatch.sh"])
    assert "/shared/cache:/shared/cache" in argv


def test_over_ssh_with_the_nodes_python():
    p = plan(launcher_python="/opt/launcher/bin/python", **SSH)
    remote = "/lustre/me/evals/2026-01-01-00-00-00-0000abcd"
    assert (
        f"/opt/launcher/bin/python -m launcher.proxy --config {remote}/proxy/proxy.json"
        in p.files["sbatch.sh"]
    )
    assert plan(endpoint={"proxy": False}, **SSH).files["sbatch.sh"].endswith('/run.sh"\n')  # nothing to run


def test_auto_export_is_a_job_after_the_array():
    p = plan(pending={"export": AUTO["export"]}, **AUTO["execution"])
    assert json.loads(p.files["auto_export.json"]) == {
        "destinations": ["local"],
        "settings": {"local": {"path": "/t.csv"}},
    }
    check_golden(EXPORT_BATCH, p.files[EXPORT_BATCH])
    subprocess.run(["bash", "-n"], input=p.files[EXPORT_BATCH], text=True, check=True)
    assert EXPORT_BATCH not in plan().files


def test_a_proxy_port_too_high_for_every_task_is_one_line():
    with pytest.raises(
        ConfigError, match=r"^target.api_endpoint.proxy_port: 65534 \+ one port per task runs"
    ):
        plan(endpoint={"proxy_port": 65534}, container_runtime="pyxis")
    assert plan(endpoint={"proxy_port": 65535})  # the nodes' shared proxies: one port


def test_no_task_folder_takes_the_invocations_own_names():
    names = ["proxy", "slurm_export_jobs", "auto_export.json"]
    p = plan(tasks=[{"name": n, "container": "i:1", "command": ["x"]} for n in names])
    assert [j.folder for j in p.jobs] == [f"{n}-2" for n in names]


@pytest.mark.parametrize("proxy", [True, False])
def test_a_pyxis_step_exports_only_the_tasks_variables_and_what_enroot_needs(proxy):
    """pyxis sets every variable of its step in the container, and a step gets the whole job environment
    unless srun --export names what it gets (the real step: tests/integration/test_slurm.py)."""
    from launcher.executors.slurm.pyxis import PYXIS_STEP_NAMES

    env = {"name": "mine", "container": "i:1", "command": ["x"], "env_vars": {"TOKEN": "HOST_TOKEN"}}
    files = plan(tasks=[env], endpoint={"proxy": proxy}, container_runtime="pyxis").files
    srun = next(ln for ln in files["mine/run.sh"].splitlines() if " srun " in ln)
    option = dict(a.split("=", 1) for a in srun.split() if a.startswith("--") and "=" in a)
    container = set(option["--container-env"].split(","))  # the task's variables
    assert {"TOKEN", "LAUNCHER_CONFIG", "API_KEY"} <= container  # behind the proxy API_KEY is its credential
    assert ('API_KEY="${LAUNCHER_PROXY_TOKEN}"' in srun) is proxy and (
        'API_KEY="${MY_API_KEY}"' in srun
    ) is not proxy
    assert set(option["--export"].split(",")) == container | set(PYXIS_STEP_NAMES)
    assert "MY_API_KEY" not in srun.split("srun", 1)[1]  # the key's host name only as a value source


def test_a_pyxis_task_variable_named_like_an_srun_export_word_is_one_line():
    task = {"name": "mine", "container": "i:1", "command": ["x"], "env_vars": {"ALL": "HOST_ALL"}}
    with pytest.raises(ConfigError, match=r"^evaluation.tasks\[0\].env_vars.ALL: is a word of srun --export"):
        plan(tasks=[task], container_runtime="pyxis")
    assert plan(tasks=[task])  # docker passes it with -e ALL


def test_the_key_is_unset_after_the_proxy_starts_unless_a_task_names_it():
    """The element's script drops the key once the proxy holds it (nothing after needs it), unless a task
    passes it itself."""
    batch = plan().files["sbatch.sh"]
    assert batch.index("unset MY_API_KEY") > batch.index('until [ -s "$proxy_state/proxy.port" ]') > 0
    assert batch.index("unset MY_API_KEY") < batch.index("bash run.sh")
    mine = {"name": "mine", "container": "i:1", "command": ["x"], "env_vars": {"K": "MY_API_KEY"}}
    assert "unset" not in plan(tasks=[mine]).files["sbatch.sh"]
    assert "unset" not in plan(endpoint={"api_key": None}).files["sbatch.sh"]


@pytest.mark.parametrize(("port", "fits"), [(65533, True), (65534, False)])
def test_each_elements_proxy_port_must_exist(port, fits):
    """Three elements take the port + 0, 1, 2: the last must be at most 65535."""
    own = {"container_runtime": "pyxis"}  # each element its own proxy
    if fits:
        url = run_config(plan(endpoint={"proxy_port": port}, **own), 2)["url"]
        assert url.startswith("http://127.0.0.1:65535/")
        return
    with pytest.raises(ConfigError, match="65534 \\+ one port per task runs past 65535 \\(up to 65536\\)"):
        plan(endpoint={"proxy_port": port}, **own)


def test_a_generated_code_task_needs_the_docker_runtime():
    """Its programs run in a sandbox container that only run.sh's docker phases start."""
    with pytest.raises(ConfigError, match=r"^evaluation.tasks\[0\].name: .* sandbox container, which needs"):
        plan(tasks=["launcher.humaneval"], container_runtime="pyxis")
    assert plan(tasks=["launcher.humaneval"])


def test_launcher_image_is_checked_and_named_in_the_scripts():
    with pytest.raises(
        ConfigError, match=r"^execution.launcher_image: 'bad image' is not an image reference"
    ):
        plan(launcher_image="bad image")
    assert (
        " reg.example/x/tools:1 python3 -m launcher.proxy "
        in plan(launcher_image="reg.example/x/tools:1").files["sbatch.sh"]
    )


def test_pyxis_never_hands_the_tasks_home_to_enroot(tmp_path):
    """N4: run.sh used to set HOME=/tmp in srun's own environment, which pyxis hands to enroot (its
    config, hooks and cache then came from /tmp/.config/enroot, which another user can create). The
    rendered run.sh runs here with a stub `srun` (no pyxis on this machine) that records the environment
    it got and its command: srun keeps the job's HOME; the container's HOME=/tmp is set inside it."""
    task = {"name": "mine", "container": "i:1", "command": ["x"], "env_vars": {"EXTRA": "lit:1"}}
    script = plan(tasks=[task], endpoint={"proxy": False}, container_runtime="pyxis").files["mine/run.sh"]
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/srun").write_text(
        '#!/bin/sh\necho "HOME=$HOME EXTRA=$EXTRA" > "$SEEN"\necho "$@" >> "$SEEN"\n'
    )
    (tmp_path / "bin/srun").chmod(0o755)
    (tmp_path / "run.sh").write_text(script)
    home = tmp_path / "me"
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(home), "SEEN": str(tmp_path / "seen"),
           "MY_API_KEY": "k"}  # fmt: skip
    (tmp_path / "logs").mkdir()
    proc = subprocess.run(["bash", str(tmp_path / "run.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    seen_env, argv = (tmp_path / "seen").read_text().splitlines()
    assert seen_env == f"HOME={home} EXTRA=1"
    assert argv.endswith("--container-env=API_KEY,EXTRA,LAUNCHER_CONFIG,LAUNCHER_TASK env HOME=/tmp x")


def test_a_pyxis_task_variable_from_the_host_under_an_enroot_name_is_one_line():
    task = {
        "name": "mine",
        "container": "i:1",
        "command": ["x"],
        "env_vars": {"NVIDIA_VISIBLE_DEVICES": "GPUS"},
    }
    with pytest.raises(
        ConfigError, match=r"env_vars.NVIDIA_VISIBLE_DEVICES: is a name pyxis also hands to enroot"
    ):
        plan(tasks=[task], container_runtime="pyxis")
    assert plan(tasks=[task])  # docker: passed with -e as any other


@pytest.mark.parametrize("output_dir", ["/data/a,b", "/data/a:b"])
def test_a_pyxis_output_dir_that_container_mounts_cannot_express_is_one_line(output_dir):
    """L2: `--container-mounts=/data/a,b/...:/results` would be two mounts (or a bad one) on the node."""
    from launcher.executors.slurm.pyxis import pyxis_mounts

    with pytest.raises(ConfigError, match=r"^execution.output_dir: .* pyxis's --container-mounts cannot"):
        pyxis_mounts(f"{output_dir}/inv/t/results", ())
    with pytest.raises(ConfigError, match=r"^execution.mounts: .*,"):
        pyxis_mounts("/data/inv/t/results", ("/a,b:/x:ro",))
    assert pyxis_mounts("/data/inv/t/results", ("/a:/x:ro",)) is None


def test_a_pyxis_plan_under_an_output_dir_with_a_comma_is_refused():
    data = {
        "execution": {"output_dir": "/data/a,b", "user": "1000:1000", "container_runtime": "pyxis"},
        "target": {"api_endpoint": {"url": "http://10.0.0.5:8000/v1", "model_id": "m"}},
        "evaluation": {"tasks": TASKS},
    }
    spec = to_run_spec(data, "slurm", SlurmConfig)
    with pytest.raises(ConfigError, match=r"^execution.output_dir: "):
        SlurmExecutor(spec.execution).plan(spec, "0000abcd", "/data/a,b/2026-0000abcd", 1767225600.0)
