"""How the launcher's own steps run on Slurm nodes: the endpoint proxy (one per node, or per array
element: `shares_node_proxy`) and the auto-export job. Pure rendering.

By default they run from our tools image (`execution.launcher_image`, built offline by `make
tools-image`) through the same container runtime as the tasks, so a cluster needs nothing installed but
Slurm and that runtime: `docker run` with the invocation folder mounted at its own path, or a pyxis step
(`srun --overlap --container-image`). `execution.launcher_python` (a python on the nodes with
launcher[proxy]) runs them without a container instead. Either way only the proxy's process gets the
endpoint key; the task containers get the proxy's URL.
"""

from __future__ import annotations

import shlex

from launcher.executors.container.render import RUNTIME_USER, Expanded, shell_join
from launcher.executors.slurm.config import SlurmConfig
from launcher.executors.slurm.pyxis import PYXIS_STEP_NAMES
from launcher.store.layout import LABEL_INVOCATION, LABEL_JOB

# What the exporters read from the environment (launcher/export: to_mlflow, to_wandb); passed by name, so
# a name that is not set stays unset in the container and no value is written.
EXPORT_ENV = ("MLFLOW_TRACKING_URI", "WANDB_API_KEY", "WANDB_MODE")
PYTHON_IN_IMAGE = "python3"


def uses_image(cfg: SlurmConfig) -> bool:
    return not cfg.launcher_python


def shares_node_proxy(cfg: SlurmConfig) -> bool:
    """Whether the array elements on a node share one proxy (launcher.proxy.node). Only from the image
    through docker: that container is the docker daemon's, so it outlives the element that started it
    while others use it. A pyxis step or a launcher_python process is in the starting element's job,
    which Slurm cleans up when that element ends: each element then runs its own proxy."""
    return uses_image(cfg) and cfg.container_runtime == "docker"


def node_proxy_name(invocation_id: str) -> str:
    """The container of the invocation's proxy on a node (one per node: names are per docker daemon)."""
    return f"launcher-{invocation_id}-proxy"


def runner(
    cfg: SlurmConfig,
    invocation_id: str,
    folder: str,
    role: str,
    env_names: tuple[str, ...] = (),
    mounts: tuple[str, ...] = (),
) -> str:
    """The shell words that stand for `python` in `<python> -m launcher.<module> ...`, run from the
    current folder (which lies inside `folder`, the invocation folder). `role`: "node-proxy" (one per
    node, shared by its elements: signals to the element's `docker run` client are not passed on),
    "proxy" (one per array element: its container name carries the element index) or "export".
    `env_names`: variables handed on by name (the key, for the proxy). `mounts`: more host folders it
    writes (a shared caching_dir)."""
    if not uses_image(cfg):
        return shlex.quote(cfg.launcher_python)
    binds = [f"{folder}:{folder}", *(f"{m}:{m}" for m in mounts)]
    here = Expanded("$PWD")
    if cfg.container_runtime == "pyxis":
        argv = [
            "srun",
            "--ntasks=1",
            "--overlap",  # beside the task's own step in the same allocation
            f"--export={','.join(sorted({*env_names, *PYXIS_STEP_NAMES}))}",
            f"--container-image={cfg.launcher_image}",
            f"--container-mounts={','.join(binds)}",
            Expanded(f"--container-workdir={here}"),
            "--no-container-mount-home",
        ]
        if env_names:
            argv.append(f"--container-env={','.join(sorted(env_names))}")
        return shell_join([*argv, PYTHON_IN_IMAGE])
    shared = role == "node-proxy"
    role = "proxy" if shared else role
    name = f"launcher-{invocation_id}-{role}" + ("-${SLURM_ARRAY_TASK_ID}" if role == "proxy" else "")
    name = node_proxy_name(invocation_id) if shared else name
    argv = ["docker", "run", "--rm", "--init", "--pull", "never", "--name", Expanded(name)]
    argv += ["--sig-proxy=false"] if shared else []  # scancel of one element must not stop it
    argv += [
        "--label",
        f"{LABEL_INVOCATION}={invocation_id}",
        "--label",
        f"{LABEL_JOB}={invocation_id}.{role}",
    ]
    argv += ["--network", "host", "--user", RUNTIME_USER, "-w", here]
    for bind in binds:
        argv += ["-v", bind]
    for env in sorted(env_names):
        argv += ["-e", env]  # the value comes from this script's environment, never from a file
    return shell_join([*argv, *cfg.extra_docker_args, cfg.launcher_image, PYTHON_IN_IMAGE])


def export_mounts(auto_export_json: str, folder: str) -> tuple[str, ...]:
    """Host folders the export step writes outside the invocation folder (mounted into its container at
    the same path): the folder of an absolute `export.local.path`."""
    import json
    import os

    path = str((json.loads(auto_export_json)["settings"].get("local") or {}).get("path") or "")
    parent = os.path.dirname(os.path.normpath(path))
    inside = parent == folder or parent.startswith(folder + "/")
    return (parent,) if path.startswith("/") and parent != "/" and not inside else ()  # never / over /


def submit_checks(
    cfg: SlurmConfig, where: str, images: list[str], proxy: bool, export: bool
) -> tuple[str, ...]:
    """What submit checks on the cluster before anything is queued (the dry run prints it, contacting
    nothing): the Slurm commands, the images (docker runtime: present there; pyxis: enroot imports them
    when the job starts), and launcher_python when it is set."""
    out = [f"sbatch, squeue and scancel on {where}"]
    if cfg.container_runtime == "docker" and images:
        out.append(f"images present in {where}'s docker: {', '.join(sorted(set(images)))}")
    if cfg.launcher_python and (proxy or export):
        module = "launcher.proxy.server" if proxy else "launcher.export"
        out.append(f"execution.launcher_python {cfg.launcher_python} on {where} imports {module}")
    return tuple(out)
