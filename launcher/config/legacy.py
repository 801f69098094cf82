"""NeMo Evaluator Launcher (NEL) 0.2.6 spellings -> ours. The only module that knows NEL's names.

Facts from nemo-evaluator-launcher 0.2.6 (its configs/ folder, common/config_models.py and
common/env_vars.py, and the example configs of the NVIDIA-NeMo/Evaluator tag
nemo-evaluator-launcher-v0.2.6). Every NEL key is mapped to our schema or refused by name in one line;
nothing is dropped silently: what we accept but do not act on yet lands in RunSpec.pending.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any

from launcher.config.values import NOT_SHOWN, looks_secret
from launcher.errors import ConfigError

OUR_EXECUTORS = ("local", "slurm")

# nemo_evaluator_config.config.params.<NEL name> -> params.<our name> (the rest stays pass-through)
PARAMS = {
    "parallelism": "parallelism",
    "limit_samples": "limit_samples",
    "request_timeout": "request_timeout",
    "max_retries": "max_retries",
    "temperature": "temperature",
    "top_p": "top_p",
    "max_new_tokens": "max_tokens",
}

# NEL Slurm execution keys whose meaning is one of our Slurm keys or one #SBATCH line.
SLURM_RENAMES = {"walltime": "time_limit", "num_nodes": "nodes"}
# NEL keys we refuse by name, with why (multi-instance serving, Lepton, export-job partitions, ...).
REFUSED = {
    "execution.max_walltime": "there is no total-time cap across resumes yet; remove it (or set null)",
    "execution.cpu_partition": "export jobs are not wired yet; remove it (or set null)",
    "execution.lepton_platform": "Lepton is not supported",
    "execution.evaluation_tasks": "Lepton is not supported",
    "execution.env_var_names": "Lepton is not supported",
    "deployment.lepton_config": "Lepton is not supported",
    "deployment.base_command": "is NEL's template of the vllm command; set deployment.command (one shell "
    "string) instead",
}
AUX_RESERVED_PREFIXES = ("SLURM", "PRIMARY", "MODEL", "SERVER")  # NEL 0.2.6 common/auxiliary_deployments.py
AUX_REF = "auxiliary_deployments."
# Keys NEL's own defaults carry whose value changes nothing for us: accepted only at that value.
HARMLESS = {
    "execution.num_instances": 1,
    "execution.ntasks_per_node": 1,
    "execution.subproject": "nemo-evaluator-launcher",
    "execution.max_walltime": None,
    "execution.cpu_partition": None,
    "execution.endpoint_readiness_timeout": None,
    "execution.sbatch_comment": None,
}
# A variable whose name has one of these words (split on _) holds a secret: HF_TOKEN, OPENAI_API_KEY;
# not TOKENIZERS_PARALLELISM.
SECRET_WORDS = {"KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "PAT"}
ENV_IDENTITY = ("USER", "LOGNAME", "HOME")  # ${oc.env:...} allowed for these: who you are, not secrets
ENV_INTERPOLATION = re.compile(r"\$\{\s*(?:oc\.env|env)\s*:\s*([^,}\s]*)")


# NEL 0.2.6's configs/execution/slurm/default.yaml values, in NEL's key names (mapped below like any
# user value). `execution=slurm` keeps our own defaults: no GPUs, no exclusive node, no $HOME mount.
NEL_SLURM_DEFAULT = {
    "partition": "batch",
    "walltime": "01:00:00",
    "gres": "gpu:8",
    "sbatch_extra_flags": {"exclusive": True},
    "mounts": {"mount_home": True},
}


def store_nel_groups(store: Any) -> None:
    """Make NEL's defaults-list spellings compose: `execution: slurm/default` (our Slurm executor with NEL's
    values) and `execution: lepton/default` (composes only to be refused by name). Call after the
    executors' own `execution/<name>` options are stored."""
    store.store(
        group="execution/slurm",
        name="default",
        node={"defaults": ["/execution/slurm@_here_", "_self_"], **NEL_SLURM_DEFAULT},
        package="execution",
    )
    store.store(group="execution/lepton", name="default", node={"type": "lepton"}, package="execution")


def register_resolvers() -> None:
    """NEL's interpolation `${select_not_null:key,default}` (its deployment commands use it): the value at
    `key`, or `default` when that is null or absent; and `oc.env`/`env` replaced by resolvers that refuse
    (identity variables excepted). Call once before composing."""
    from omegaconf import OmegaConf

    def select_not_null(key: str, default: Any, *, _root_: Any) -> Any:
        value = OmegaConf.select(_root_, key, default=None, throw_on_resolution_failure=False)
        return default if value is None else value

    if not OmegaConf.has_resolver("select_not_null"):
        OmegaConf.register_new_resolver("select_not_null", select_not_null, use_cache=False)
    # The scan of the unresolved text (env_interpolations) gives the clear early message; this is the
    # guarantee: whatever spelling reaches OmegaConf's grammar (oc.decode, nested or built interpolations),
    # resolving a host variable into the config raises.
    for name in ("oc.env", "env"):
        OmegaConf.register_new_resolver(name, refuse_env, use_cache=False, replace=True)


def refuse_env(key: str, default: Any = None) -> Any:
    """The `oc.env` resolver: USER/LOGNAME/HOME as OmegaConf's own, any other variable refused (its value
    would be written into run.sh, the docker command line and .hydra/)."""
    from omegaconf.resolvers import oc

    if key in ENV_IDENTITY:
        return oc.env(key) if default is None else oc.env(key, default)
    raise ValueError(
        f"${{oc.env:{key}}} would write the value of {key} into the run files; pass it by name: in env_vars "
        f"write NAME: host:{key} (api_key: {key} for the endpoint key)"
    )


def executor_name(choice: str | None) -> str | None:
    """Hydra's `execution` choice -> our executor name: NEL's `slurm/default` is our `slurm`."""
    if choice is None:
        return None
    name = choice.split("/", 1)[0]
    if name == "lepton":
        refuse_lepton("execution")
    return name


def refuse_lepton(key: str) -> None:
    raise ConfigError(
        key,
        "Lepton is not supported (NEL's lepton executor)",
        f"Use execution=local or execution=slurm ({', '.join(OUR_EXECUTORS)})",
    )


def env_interpolations(raw: Any, key: str = "") -> list[tuple[str, str]]:
    """(full key, variable) for every `${oc.env:VAR}` in an UNRESOLVED tree, identity variables excepted."""
    found = []
    if isinstance(raw, dict):
        for k, v in raw.items():
            if k != "hydra":
                found += env_interpolations(v, f"{key}.{k}" if key else str(k))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            found += env_interpolations(v, f"{key}[{i}]")
    elif isinstance(raw, str):
        found += [(key, var) for var in ENV_INTERPOLATION.findall(raw) if var not in ENV_IDENTITY]
    return found


def to_ours(data: dict, executor: str, execution_fields: set[str]) -> tuple[dict, dict, dict]:
    """NEL spellings -> ours: (tree in our shape, Mounts data, Pending data). Raises ConfigError."""
    data = copy.deepcopy(data)
    if data.get("name") is not None:
        raise ConfigError("name", "NEL's Lepton job name has no meaning here", "Remove it")
    data.pop("name", None)
    pending: dict = {}
    if data.get("export") is not None:
        pending["export"] = _mapping(data.pop("export"), "export")
    data.pop("export", None)
    top_env = _mapping(data.pop("env_vars", None) or {}, "env_vars")

    execution = data.get("execution")
    mounts: dict = {}
    if isinstance(execution, dict):
        execution, mounts, auto_export = _execution(execution, executor, execution_fields, data)
        data["execution"] = execution
        if auto_export:
            pending["auto_export"] = auto_export
    target = data.get("target")
    if isinstance(target, dict) and isinstance(target.get("api_endpoint"), dict):
        data["target"] = {**target, "api_endpoint": _endpoint(target["api_endpoint"], "target.api_endpoint")}
    deployment = data.get("deployment")
    if isinstance(deployment, dict):
        data["deployment"] = _deployment(deployment, top_env)
    aux = _auxiliary(data.pop("auxiliary_deployments", None) or {}, executor, top_env, data)
    for name in mounts.get("auxiliary") or {}:
        if name not in aux:
            raise ConfigError(
                f"execution.mounts.auxiliary.{name}",
                "names no auxiliary deployment",
                f"Auxiliary deployments: {', '.join(aux) or 'none'}",
            )
    if aux:
        data["auxiliary_deployments"] = aux
        if isinstance(data.get("evaluation"), dict):
            data["evaluation"] = resolve_aux_references(data["evaluation"], aux)
    evaluation = data.get("evaluation")
    if isinstance(evaluation, dict):
        data["evaluation"] = _evaluation(evaluation, top_env)
    elif top_env and evaluation is not None:
        raise ConfigError("evaluation", "must be a mapping with tasks")
    return data, mounts, pending


def _execution(execution: dict, executor: str, fields: set[str], data: dict) -> tuple[dict, dict, dict]:
    execution = dict(execution)
    kind = execution.pop("type", None)
    if kind == "lepton":
        refuse_lepton("execution.type")
    if kind is not None and kind != executor:
        raise ConfigError(
            "execution.type", f"{kind!r} does not match the chosen executor {executor!r}", "Remove it"
        )
    for key, why in REFUSED.items():
        name = key.removeprefix("execution.")
        if key.startswith("execution.") and name in execution:
            if HARMLESS.get(key, ...) == execution[name]:
                del execution[name]
            else:
                raise ConfigError(key, why)
    for key, value in HARMLESS.items():
        name = key.removeprefix("execution.")
        if key.startswith("execution.") and name in execution and execution[name] == value:
            del execution[name]
    mounts = _mounts(execution.pop("mounts", None))
    auto_export = _mapping(execution.pop("auto_export", None) or {}, "execution.auto_export")
    for key in sorted(set(auto_export) - {"destinations"}):  # NEL's export_image, launcher_install_cmd, ...
        raise ConfigError(
            f"execution.auto_export.{key}",
            "has no effect here: the export step runs from execution.launcher_image (built offline, nothing "
            "installed at run time) or execution.launcher_python",
            "Remove it",
        )
    extra = list(execution.get("extra_sbatch") or [])

    def needs(ours: str, nel: str) -> None:
        if ours not in fields:
            raise ConfigError(
                f"execution.{nel}", f"is a Slurm setting; execution={executor} has no {ours}", "Remove it"
            )

    for nel, ours in SLURM_RENAMES.items():
        if nel in execution:
            needs(ours, nel)
            # The composed tree always holds our default for `ours`: the NEL spelling the user wrote wins.
            value = execution.pop(nel)
            if nel == "walltime" and isinstance(value, int) and not isinstance(value, bool):
                value = _hms(value)  # YAML 1.1 reads an unquoted 01:00:00 as 3600 (base 60)
            execution[ours] = value
    if "gres" in execution:
        needs("gpus_per_node", "gres")
        gres = execution.pop("gres")
        match = re.fullmatch(r"gpu:(\d+)", str(gres)) if gres is not None else None
        if match:
            execution["gpus_per_node"] = int(match.group(1))
        elif gres is not None:
            extra.append(f"--gres={gres}")
    if execution.get("sbatch_comment") is not None:
        needs("extra_sbatch", "sbatch_comment")
        extra.append(f"--comment={execution.pop('sbatch_comment')}")
    if "ntasks_per_node" in execution:
        needs("extra_sbatch", "ntasks_per_node")
        extra.append(f"--ntasks-per-node={execution.pop('ntasks_per_node')}")
    flags = _mapping(execution.pop("sbatch_extra_flags", None) or {}, "execution.sbatch_extra_flags")
    for name, value in flags.items():
        needs("extra_sbatch", "sbatch_extra_flags")
        if value is True:
            extra.append(f"--{name}")
        elif value not in (False, None):
            extra.append(f"--{name}={value}")
    if extra:
        execution["extra_sbatch"] = extra
    _instances(execution, executor, data)
    if "endpoint_readiness_timeout" in execution:
        timeout = execution.pop("endpoint_readiness_timeout")
        deployment = data.get("deployment")
        if isinstance(deployment, dict) and timeout is not None:
            data["deployment"] = {**deployment, "startup_timeout": timeout}
    if "mode" in execution:  # NEL local: sequential | parallel
        mode = execution.pop("mode")
        if mode not in ("sequential", "parallel"):
            raise ConfigError(
                "execution.mode", f"{mode!r} is not allowed", "Allowed values: sequential, parallel"
            )
        if mode == "sequential":
            execution["max_parallel"] = 1
    if isinstance(execution.get("extra_docker_args"), str):  # NEL: one string; ours: a list of arguments
        import shlex

        execution["extra_docker_args"] = shlex.split(execution["extra_docker_args"])
    if "deployment" in execution:  # NEL Slurm: deployment.n_tasks (srun tasks of a multi-node server)
        inner = execution.pop("deployment") or {}
        if set(inner) - {"n_tasks"} or inner.get("n_tasks", 1) not in (1, execution.get("nodes", 1)):
            raise ConfigError("execution.deployment", "multi-node serving settings are not supported yet")
    return execution, mounts, auto_export


def _instances(execution: dict, executor: str, data: dict) -> None:
    """NEL `execution.num_instances` and `execution.proxy` -> deployment.num_instances and .load_balancer.

    As NEL 0.2.6 (executors/slurm/executor.py, common/helpers.py get_endpoint_url): several instances
    split `num_nodes` evenly, HAProxy on the first node balances them, and a target at the server's own
    port on 127.0.0.1 goes to HAProxy's port instead."""
    count = execution.pop("num_instances", 1)
    proxy = execution.pop("proxy", None)
    if count in (1, None):
        return
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError("execution.num_instances", f"{count!r} is not a positive whole number")
    if executor != "slurm":
        raise ConfigError(
            "execution.num_instances",
            f"several server instances run on the Slurm executor only, not on {executor}",
            "Set it to 1, or use execution=slurm",
        )
    deployment = data.get("deployment")
    if not isinstance(deployment, dict) or deployment.get("type", "none") == "none":
        raise ConfigError("execution.num_instances", "needs a deployment to run instances of", "Set it to 1")
    nodes = execution.get("nodes", 1)
    if nodes % count:
        raise ConfigError(
            "execution.num_instances",
            f"{count} instances cannot share {nodes} nodes evenly",
            "Set execution.num_nodes to a multiple of execution.num_instances",
        )
    proxy = dict(_mapping(proxy or {}, "execution.proxy"))
    if proxy.pop("type", "haproxy") != "haproxy":
        raise ConfigError(
            "execution.proxy.type", "only haproxy is supported (as in NEL)", "Set it to haproxy"
        )
    lb = {**_mapping(proxy.pop("config", None) or {}, "execution.proxy.config")}
    lb["port"] = lb.pop("haproxy_port", 5009)
    if "image" in proxy:
        lb["image"] = proxy.pop("image")
    for key in proxy:
        raise ConfigError(f"execution.proxy.{key}", "is not a load balancer setting", "Remove it")
    if lb["port"] == deployment.get("port", 8000):
        raise ConfigError(
            "execution.proxy.config.haproxy_port",
            "is the server's own port on the first node",
            "Set another port (NEL's default: 5009)",
        )
    data["deployment"] = {**deployment, "num_instances": count, "load_balancer": lb}
    target = data.get("target")
    endpoint = (target or {}).get("api_endpoint") if isinstance(target, dict) else None
    own = f"http://127.0.0.1:{deployment.get('port', 8000)}/"
    if isinstance(endpoint, dict) and str(endpoint.get("url", "")).startswith(own):
        url = f"http://127.0.0.1:{lb['port']}/{endpoint['url'][len(own) :]}"
        data["target"] = {**target, "api_endpoint": {**endpoint, "url": url}}


def relative_path_base(executor: str) -> str | None:
    """Where NEL 0.2.6 takes a relative host path of `execution.mounts` (and `dataset_dir`) from.

    Slurm: the submitting user's home. NEL submits with `ssh user@host sbatch /abs/run.sub` and checks the
    mounts with `test -d PATH` in that same session (executors/slurm/executor.py `_sbatch_remote_runsubs`,
    `_validate_remote_paths_exist`), both of which start in the login shell's home, and srun inherits that
    folder. As for `~` in a mount, the home is this machine's (over SSH: the same path is assumed).
    Local: None here, the folder is per task (known at plan time): NEL's run.sh runs in the task's folder
    and `docker run -v ./x` resolves there."""
    return os.path.expanduser("~") if executor == "slurm" else None


def absolute_mounts(mounts: dict, base: str) -> dict:
    """`execution.mounts` (our Mounts data) with every relative host path made absolute from `base`."""

    def fix(paths: dict) -> dict:
        return {
            (h if str(h).startswith(("/", "~")) else os.path.normpath(os.path.join(base, str(h)))): c
            for h, c in paths.items()
        }

    out = dict(mounts)
    for group in ("deployment", "evaluation"):
        if isinstance(out.get(group), dict):
            out[group] = fix(out[group])
    if isinstance(out.get("auxiliary"), dict):
        out["auxiliary"] = {n: fix(m) if isinstance(m, dict) else m for n, m in out["auxiliary"].items()}
    return out


def _mounts(value: Any) -> dict:
    if value is None:
        return {}
    value = dict(_mapping(value, "execution.mounts"))
    if not value.get("auxiliary"):
        value.pop("auxiliary", None)
    return value


def _auxiliary(value: Any, executor: str, top_env: dict, data: dict) -> dict:
    """NEL `auxiliary_deployments` -> name: our AuxiliaryDeployment data (type none dropped, as NEL does).

    `deployment/vllm@auxiliary_deployments.judge` composes our `_global_` deployment option there: its
    `deployment:` block is the base, what the user wrote beside it wins, its `target:` is not the judge's."""
    out = {}
    for name, raw in _mapping(value, "auxiliary_deployments").items():
        key = f"auxiliary_deployments.{name}"
        raw = dict(_mapping(raw, key))
        base = raw.pop("deployment", None) or {}
        raw.pop("target", None)
        merged = {**_mapping(base, key), **raw}  # what the user wrote beside the option wins
        if merged.get("type", "none") == "none":
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(name)):  # it names a container and files
            raise ConfigError(
                key, "the name may hold only letters, digits and _ . -", "Rename it, e.g. judge"
            )
        if executor != "slurm":
            raise ConfigError(
                key,
                f"a second model server runs on the Slurm executor only, not on {executor}",
                "Use execution=slurm, or point the task at a judge endpoint you serve yourself",
            )
        if merged.pop("num_instances", 1) != 1:
            raise ConfigError(
                f"{key}.num_instances",
                "several instances of an auxiliary server are not supported yet",
                "Set it to 1",
            )
        if merged.get("num_nodes", 1) not in (0, 1):
            raise ConfigError(
                f"{key}.num_nodes",
                "an auxiliary server across several nodes is not supported yet",
                "Set it to 1 (a node of its own) or 0 (on the first node)",
            )
        for nel_only in ("base_command", "command_template", "pre_cmd", "cache_path"):
            if merged.get(nel_only):
                raise ConfigError(
                    f"{key}.{nel_only}",
                    "is not supported for an auxiliary server yet",
                    "Set command (one shell string) instead, or remove it",
                )
            merged.pop(nel_only, None)
        merged["name"] = name
        prefix = str(merged.get("env_prefix") or name).upper()
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", prefix) or prefix in AUX_RESERVED_PREFIXES:
            raise ConfigError(
                f"{key}.env_prefix",
                f"{prefix!r} cannot prefix shell variables here",
                f"Set a name of letters, digits and _ other than {', '.join(AUX_RESERVED_PREFIXES)}",
            )
        if prefix in {d["env_prefix"] for d in out.values()}:
            raise ConfigError(f"{key}.env_prefix", f"{prefix} is used by another auxiliary deployment")
        merged["env_prefix"] = prefix
        primary = data.get("deployment") or {}
        if (
            merged.get("num_nodes", 1) == 0
            and primary.get("type", "none") != "none"
            and merged.get("port", 8000) == primary.get("port", 8000)
        ):
            raise ConfigError(
                f"{key}.port",
                "is the primary server's port on the same node",
                "Set another port, or num_nodes: 1 for a node of its own",
            )
        out[name] = _deployment(merged, top_env)
    return out


def aux_url_variable(prefix: str, endpoint: str) -> str:
    """The shell variable holding an auxiliary server's URL of `endpoint` (NEL: JUDGE_CHAT_URL)."""
    return f"{prefix}_{endpoint.upper()}_URL"


def resolve_aux_references(evaluation: dict, aux: dict) -> dict:
    """`auxiliary_deployments.<name>.model_id` -> its served model name; `.<endpoint>_url` -> `${PREFIX_<
    ENDPOINT>_URL}`, which the batch script fills in config_ef.yaml once the node is known. NEL 0.2.6 does
    the same text replacement (common/helpers.py); a reference left over is refused, never passed on."""
    refs = {}
    for name, d in aux.items():
        refs[f"{AUX_REF}{name}.model_id"] = str(d.get("served_model_name", ""))
        for endpoint in d.get("endpoints") or {}:
            if endpoint != "health":
                refs[f"{AUX_REF}{name}.{endpoint}_url"] = (
                    "${" + aux_url_variable(d["env_prefix"], endpoint) + "}"
                )
    # Longest first: `judge.chat_url` is never cut short by a shorter reference.
    ordered = sorted(refs.items(), key=lambda kv: -len(kv[0]))

    def walk(node: Any, key: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{key}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{key}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str) and AUX_REF in node:
            for ref, value in ordered:
                node = node.replace(ref, value)
            if AUX_REF in node:
                raise ConfigError(
                    key,
                    f"{node!r} names no auxiliary deployment value",
                    f"Use one of: {', '.join(sorted(refs))}",
                )
        return node

    out = dict(evaluation)
    if "nemo_evaluator_config" in out:
        out["nemo_evaluator_config"] = walk(out["nemo_evaluator_config"], "evaluation.nemo_evaluator_config")
    if isinstance(out.get("tasks"), list):
        out["tasks"] = [
            {
                **t,
                "nemo_evaluator_config": walk(
                    t["nemo_evaluator_config"], f"evaluation.tasks[{i}].nemo_evaluator_config"
                ),
            }
            if isinstance(t, dict) and "nemo_evaluator_config" in t
            else t
            for i, t in enumerate(out["tasks"])
        ]
    return out


def _endpoint(endpoint: dict, key: str) -> dict:
    endpoint = dict(endpoint)
    if "api_key_name" in endpoint:
        old = endpoint.pop("api_key_name")
        if endpoint.get("api_key") not in (None, old):
            raise ConfigError(
                f"{key}.api_key_name",
                f"conflicts with {key}.api_key",
                "Keep only api_key (the name of the host variable holding the key)",
            )
        endpoint["api_key"] = old
    if endpoint.get("adapter_config") is not None:
        endpoint["adapter_config"] = adapter_config(endpoint["adapter_config"], f"{key}.adapter_config")
    return endpoint


def adapter_config(value: Any, key: str) -> dict:
    """NEL adapter_config -> our AdapterConfig data: the chains typed, every other key kept as written."""
    value = dict(_mapping(value, key))
    out: dict = {}
    for chain in ("interceptors", "post_eval_hooks"):
        if chain in value:
            items = value.pop(chain) or []
            if not isinstance(items, list):
                raise ConfigError(f"{key}.{chain}", "expected a list of {name, enabled, config}")
            out[chain] = items
    out["settings"] = value
    return out


def _deployment(deployment: dict, top_env: dict) -> dict:
    deployment = dict(deployment)
    for key, why in REFUSED.items():
        if key.startswith("deployment.") and key.removeprefix("deployment.") in deployment:
            if key == "deployment.lepton_config":
                refuse_lepton(key)
            raise ConfigError(key, why)
    if deployment.get("type") in ("vllm", "sglang", "nim", "trtllm", "generic") and "command" in deployment:
        command = deployment.pop("command")
        if command is not None:
            deployment["shell_command"] = command if isinstance(command, str) else " ".join(map(str, command))
    endpoints = deployment.get("endpoints")
    if isinstance(endpoints, dict) and endpoints.get("health") and "health_path" not in deployment:
        deployment["health_path"] = endpoints["health"]
    if isinstance(deployment.get("extra_args"), list):
        deployment["extra_args"] = " ".join(map(str, deployment["extra_args"]))
    return _env_block(deployment, "deployment", top_env)


def _evaluation(evaluation: dict, top_env: dict) -> dict:
    evaluation = _env_block(dict(evaluation), "evaluation", top_env)
    shared = evaluation.pop("nemo_evaluator_config", None)
    shared = _nel_config(shared, "evaluation.nemo_evaluator_config") if shared is not None else {}
    _typed_params(evaluation, shared, "evaluation.nemo_evaluator_config")
    tasks = evaluation.get("tasks")
    if isinstance(tasks, list):
        evaluation["tasks"] = [_task(t, i, shared) for i, t in enumerate(tasks)]
    return evaluation


def _task(task: Any, i: int, shared: dict) -> Any:
    key = f"evaluation.tasks[{i}]"
    if isinstance(task, str):
        task = {"name": task}
    if not isinstance(task, dict):
        return task
    if "config" in task or "target" in task:  # NEL 0.2.6 refuses these too (TaskModel forbids extra keys)
        name = "config" if "config" in task else "target"
        raise ConfigError(
            f"{key}.{name}", "is not a task key", f"Write it under {key}.nemo_evaluator_config.{name}"
        )
    task = _env_block(dict(task), key, {})
    own = task.pop("nemo_evaluator_config", None)
    own = _nel_config(own, f"{key}.nemo_evaluator_config") if own is not None else {}
    _typed_params(task, own, f"{key}.nemo_evaluator_config")
    merged = _deep_merge(shared, own)
    if merged:
        task["nemo_evaluator_config"] = merged
        endpoint = (merged.get("target") or {}).get("api_endpoint") or {}
        if isinstance(endpoint, dict) and endpoint.get("adapter_config") is not None:
            task["adapter_config"] = adapter_config(
                endpoint["adapter_config"], f"{key}.nemo_evaluator_config.target.api_endpoint.adapter_config"
            )
    return task


def _nel_config(value: Any, key: str) -> dict:
    """A nemo_evaluator_config block: free-form for NEL, but its known sections must be mappings."""
    value = _mapping(value, key)
    for section in ("config", "target"):
        if value.get(section) is not None:
            inner = _mapping(value[section], f"{key}.{section}")
            if inner.get("params") is not None:
                _mapping(inner["params"], f"{key}.{section}.params")
    return value


def _typed_params(block: dict, nel: dict, key: str) -> None:
    """Known config.params also become our typed params (explicit `params` win); the rest stays NEL's."""
    old = (nel.get("config") or {}).get("params") or {}
    params = dict(block.get("params") or {})
    for name, value in old.items():
        if name in PARAMS:
            params.setdefault(PARAMS[name], value)
    if params:
        block["params"] = params


def _env_block(block: dict, key: str, top_env: dict) -> dict:
    """Split NEL env_vars (host:/runtime:/lit:) into host names (env_vars) and literals (literal_env)."""
    own = _mapping(block.get("env_vars") or {}, f"{key}.env_vars")
    env = {**top_env, **own}
    if not env:
        return block
    names, literals = {}, {}
    for name, value in env.items():
        where = f"{key}.env_vars.{name}" if name in own else f"env_vars.{name}"
        kind, _, rest = value.partition(":") if isinstance(value, str) else ("", "", value)
        if kind in ("host", "runtime"):  # ours are read when the task starts: NEL's runtime: binding
            names[name] = rest
        elif kind == "lit":
            if looks_secret(rest) or SECRET_WORDS & set(str(name).upper().split("_")):
                raise ConfigError(
                    where,
                    f"a literal for a secret would be written into the run scripts {NOT_SHOWN}",
                    f"Export it on the host and write {name}: host:<VARIABLE_NAME>",
                )
            literals[name] = rest
        else:
            names[name] = value
    block["env_vars"] = names
    if literals:
        block["literal_env"] = {**(block.get("literal_env") or {}), **literals}
    return block


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _mapping(value: Any, key: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {type(value).__name__}")
    return value


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out
