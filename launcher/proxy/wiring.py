"""What an executor needs to put the proxy in front of an invocation's tasks (pure but `read_stats`):

- `proxy_config(api_endpoint, upstream)`: the content of <invocation>/proxy/proxy.json (validated here, so
  a bad `adapter_config` is the one-line error at launch, not a failed script later);
- `task_url(url, port)`: the endpoint URL a task container gets instead of the target's;
- `render_start(...)`: the bash lines of run_all.sh that start the proxy before the tasks, wait until it
  is ready and define `stop_proxy` (to call from the script's EXIT trap);
- `read_stats(invocation_folder, task_folders)`: where the counters are (status, export and the report).

The port is fixed when the scripts are written (like the deployment server's), so every task's
run_config.json and argv can name it; a resume reuses it.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from launcher.proxy import node, stats
from launcher.proxy.settings import from_adapter_config
from launcher.proxy.stats import STATS_FILE

STATE_DIR = "proxy"  # inside the invocation folder: proxy.json, proxy.port, proxy_stats.json, cache/, log
CONFIG_FILE = f"{STATE_DIR}/proxy.json"
LOG_FILE = "logs/proxy.log"
PORT_FILE = "proxy.port"  # in STATE_DIR, once the port is bound: its presence means ready (connections queue)
PID_FILE = "proxy.pid"  # in STATE_DIR, once the proxy serves: status asks that process for live counters
PORT_RANGE = (20000, 32768)
# The credential tasks present to the proxy (`Authorization: Bearer ...`): drawn at random by the script that
# starts the proxy, each time it starts, and passed by environment only (the proxy reads it, run.sh hands it
# to the containers as API_KEY); never in a file, an argv or a log.
TOKEN_ENV = "LAUNCHER_PROXY_TOKEN"
TOKEN_CARRIER = "API_KEY"  # the task's variable that carries it (the harnesses' and NEL's api_key_name)


def enabled(api_endpoint: Mapping) -> bool:
    """`target.api_endpoint.proxy: false` turns the proxy off (tasks then get the key, as before)."""
    return api_endpoint.get("proxy", True) is not False


def proxy_config(api_endpoint: Mapping, upstream: str | None = None) -> dict:
    """proxy.json from `target.api_endpoint` ({url, api_key: NAME, adapter_config}); `upstream` overrides
    the URL (the deployment's server). Raises ProxyConfigError (one line) for a bad adapter_config."""
    url = upstream or api_endpoint["url"]
    adapter = dict(api_endpoint.get("adapter_config") or {})
    from_adapter_config(adapter, upstream=url, api_key_env=api_endpoint.get("api_key"))
    return {"upstream": url, "api_key_env": api_endpoint.get("api_key"), "adapter_config": adapter}


def task_url(url: str, port: int) -> str:
    """The proxy's URL for the same API the target URL names (chat, completions, or the /v1 base)."""
    path = urlsplit(url).path.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if path.endswith(suffix):
            return f"http://127.0.0.1:{port}/v1{suffix}"
    return f"http://127.0.0.1:{port}/v1"


# nemo-evaluator's progress_tracking interceptor POSTs its count somewhere on every answer (it has no "off");
# inside a catalogue task it POSTs here, and the proxy acknowledges without reading (launcher.catalog.nel).
PROGRESS_PATH = "/proxy/progress"


# Answers 204 to a client presenting the credential (401 otherwise) and reaches nothing: an array element
# asks it whether the proxy on its node is alive and its own (render_node_start).
READY_PATH = "/proxy/ready"


def progress_url(port: int) -> str:
    return f"http://127.0.0.1:{port}{PROGRESS_PATH}"


def render_start(
    python: str, port: int | str, ready_timeout: int = 30, config: str = CONFIG_FILE, runner: str = ""
) -> str:
    """Bash that starts the proxy, run from the folder that holds `events.log` and `logs/` (the invocation
    folder for run_all.sh; on Slurm each array element's task folder, with the invocation's proxy.json
    as `config`). Its state goes to `proxy/` there. `port`: a number, or a shell word that expands to
    one (Slurm: "$proxy_port", computed from the array index). `runner`: shell words already rendered
    that stand for `python` (Slurm: a container of our tools image), instead of `python`."""
    q = shlex.quote
    port = str(int(port)) if isinstance(port, int) else port
    fail = 'echo "exited $(date +%s) 1 $reason" >> events.log; echo "error: $reason" >&2; exit 1'
    return f"""\
# The endpoint proxy (launcher.proxy): the only process holding the key; the tasks talk to it, presenting
# {TOKEN_ENV}, a random credential drawn here (passed by environment only).
{TOKEN_ENV}=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \\n')
if [ "${{#{TOKEN_ENV}}}" -ne 64 ]; then
  reason="cannot draw the endpoint proxy's credential from /dev/urandom"
  {fail}
fi
export {TOKEN_ENV}
stop_proxy() {{  # SIGTERM: in-flight requests finish briefly, counters go to {STATE_DIR}/{STATS_FILE}
  if [ -n "${{proxy_pid:-}}" ] && kill -0 "$proxy_pid" 2>/dev/null; then
    kill -TERM "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null
  fi
}}
rm -f {STATE_DIR}/{PORT_FILE}
echo "=== $(date '+%Y-%m-%d %H:%M:%S') start" >> {LOG_FILE}
{runner or q(python)} -m launcher.proxy --config {q(config)} --state-dir {STATE_DIR} --port {port} \
>> {LOG_FILE} 2>&1 < /dev/null &
proxy_pid=$!
deadline=$(( $(date +%s) + {int(ready_timeout)} ))
until [ -s {STATE_DIR}/{PORT_FILE} ]; do
  if ! kill -0 "$proxy_pid" 2>/dev/null; then
    reason="the endpoint proxy exited before it was ready; see {LOG_FILE}"
    {fail}
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    reason="the endpoint proxy was not ready within {int(ready_timeout)} s; see {LOG_FILE}"
    {fail}
  fi
  sleep 0.05
done
"""


def plan(api_endpoint, invocation_id: str) -> tuple[int, dict[str, str]] | None:
    """For an executor's plan: (port, {relative path: content}) of the proxy, or None when it is off.
    `api_endpoint` is the RunSpec's (a dataclass) or a mapping; a bad adapter_config raises
    ProxyConfigError (one line; callers turn it into their config error)."""
    get = (
        api_endpoint.get
        if isinstance(api_endpoint, Mapping)
        else lambda k, d=None: getattr(api_endpoint, k, d)
    )
    adapter = get("adapter_config") or {}
    adapter = adapter.as_dict() if hasattr(adapter, "as_dict") else dict(adapter)
    endpoint = {
        "url": get("url"),
        "api_key": get("api_key"),
        "proxy": get("proxy", True),
        "adapter_config": adapter,
    }
    if not enabled(endpoint):
        return None
    config = proxy_config(endpoint)
    port = get("proxy_port", 0) or port_for(invocation_id)
    return port, {CONFIG_FILE: json.dumps(config, indent=2, sort_keys=True) + "\n"}


def port_for(invocation_id: str) -> int:
    """A port drawn from the invocation id (plans stay pure; a resume gets the same one), below Linux's
    ephemeral range (32768+) so outgoing connections never hold it. A port already taken makes the
    proxy fail at start with the reason in logs/proxy.log; `proxy_port` then picks another."""
    digest = hashlib.sha256(invocation_id.encode()).digest()
    return PORT_RANGE[0] + int.from_bytes(digest[:4], "big") % (PORT_RANGE[1] - PORT_RANGE[0])


def read_stats(invocation_folder, task_folders=()) -> tuple[dict, str] | None:
    """The counters the proxy last wrote for these tasks and what they cover, or None without any. On
    Slurm each array element's proxy writes into its task folder (several are added up by
    `stats.combine`); locally one proxy serves the invocation and writes into its folder."""
    own = [c for c in (stats.read(Path(f) / STATE_DIR) for f in task_folders) if c is not None]
    if own:
        if len(task_folders) == 1:
            return own[0], "this task"
        return stats.combine(own), "each task's own proxy, added up"
    on_nodes = node_stats(Path(invocation_folder) / STATE_DIR / node.NODES)
    if on_nodes:
        return stats.combine(on_nodes), "each node's proxy, added up (all tasks of the invocation)"
    shared = stats.read(Path(invocation_folder) / STATE_DIR)
    return None if shared is None else (shared, "all tasks of the invocation")


LEVELS = ("limit", "settled", "max_concurrent", "queued")  # of `concurrency`: now, not counted up


def node_stats(nodes: Path) -> list[dict]:
    """The counters of every proxy started on Slurm's nodes (<nodes>/<node>/<its starter's job id>/); of a
    node's earlier ones (before a resume, or between elements) only the counts: its concurrency now is
    its latest proxy's."""
    out = []
    for folder in sorted(p for p in nodes.glob("*") if p.is_dir()):
        found = [c for c in (stats.read(p) for p in folder.glob("*") if p.is_dir()) if c is not None]
        found.sort(key=lambda c: c.get("started") or 0)
        for older in found[:-1]:
            older["concurrency"] = {
                k: v for k, v in (older.get("concurrency") or {}).items() if k not in LEVELS
            }
        out += found
    return out
