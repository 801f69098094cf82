"""An array element's bash that joins its node's endpoint proxy, starting it when none serves, and leaves
it (`stop_proxy`, from the EXIT trap); the last element to leave stops it. Pure rendering; the proxy's
side and the lock files are launcher.proxy.node's.

Under `mutex` an element takes its shared `lease` (waiting for a proxy that is stopping to exit), then
asks `GET /proxy/ready` on the invocation's port with its credential: 204 means that proxy is alive and
this submission's (the credential is drawn by `launcher` at each submission and reaches every element
through the job's environment, as the key does). Anything else (a dead proxy, a stale port file, a
proxy of an earlier submission) and the element removes the container of that name and starts a new
one, with its own state folder `<node dir>/<SLURM_JOB_ID>` (counters, port file); the response cache
is the invocation's `proxy/cache` (its segments are one per proxy process: shared safely). A probe or a
lock that does not answer in time fails the element with one line, never hangs it.
"""

from __future__ import annotations

import shlex

from launcher.proxy.node import LEASE, MUTEX, NODES
from launcher.proxy.wiring import CONFIG_FILE, PORT_FILE, READY_PATH, STATE_DIR, TOKEN_ENV

NODES_DIR = f"{STATE_DIR}/{NODES}"  # in the invocation folder: one folder per node
WAIT = 120  # s an element waits for the mutex, or for a stopping proxy to exit, before it fails


def render_node_start(folder: str, runner: str, container: str, ready_timeout: int = 30) -> str:
    """Bash run from the element's task folder (events.log there) with "$proxy_port" set. `runner`:
    shell words standing for `python` (a `docker run` of the tools image named `container`)."""
    q = shlex.quote
    nodes, name, wait = f"{folder}/{NODES_DIR}", q(container), int(ready_timeout)
    cache = f"{folder}/{STATE_DIR}/cache"  # the invocation's, as locally: every node's, every resume's
    fail = 'echo "exited $(date +%s) 1 $1" >> events.log; echo "error: $1" >&2; exit 1'
    request = f"GET {READY_PATH} HTTP/1.0\\r\\nAuthorization: Bearer %s\\r\\n\\r\\n"
    probe = (
        f'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "{request}" "${TOKEN_ENV}" >&3'
        ' && read -r _ code _ <&3 && [ "$code" = 204 ]'
    )
    return f"""\
# The endpoint proxy (launcher.proxy) of this invocation on this node, shared by its array elements here
# (launcher.proxy.node): the only process holding the key. The tasks present {TOKEN_ENV}, drawn by
# `launcher` at submission and in the job's environment only.
proxy_fail() {{ {fail}; }}
stop_proxy() {{  # this element leaves; the last one stops the proxy (which would stop itself within 2 s)
  [ -n "${{proxy_joined:-}}" ] || return 0
  proxy_joined=
  if exec 8>"$proxy_dir/{MUTEX}" && flock -w {WAIT} 8; then  # no element joins meanwhile
    exec 9>&-
    flock -xn "$proxy_dir/{LEASE}" docker stop -t 10 {name} >/dev/null 2>&1
  fi
  exec 8>&- 9>&-  # without the mutex only the lease goes: the proxy stops itself, under the mutex
}}
[ "${{#{TOKEN_ENV}}}" -ge 32 ] || proxy_fail "{TOKEN_ENV} is not in the job's environment (submit again)"
command -v flock >/dev/null || proxy_fail "flock is missing on $(hostname -s); the proxy needs it"
proxy_node=${{SLURMD_NODENAME:-$(hostname -s)}}
proxy_dir={q(nodes)}/$proxy_node
proxy_log={q(folder)}/logs/proxy-$proxy_node.log
mkdir -p "$proxy_dir" || proxy_fail "cannot create $proxy_dir"
proxy_ready() {{  # the proxy on this node answers this submission's credential (a 10 s bound)
  timeout 10 bash -c {q(probe)} _ "$proxy_port" 2>/dev/null
}}
exec 8>"$proxy_dir/{MUTEX}" 9>"$proxy_dir/{LEASE}" || proxy_fail "cannot open the lock files in $proxy_dir"
flock -w {WAIT} 8 || proxy_fail "$proxy_dir/{MUTEX} stayed locked for {WAIT} s"
flock -s -w {WAIT} 9 || proxy_fail "the proxy before on $proxy_node did not stop in {WAIT} s; see $proxy_log"
proxy_joined=1
if ! proxy_ready; then
  docker rm -f {name} >/dev/null 2>&1  # a dead proxy's or an earlier submission's, if any; its name is
  for _ in $(seq 100); do docker inspect {name} >/dev/null 2>&1 || break; sleep 0.1; done  # free once removed
  proxy_state=$proxy_dir/$SLURM_JOB_ID
  mkdir -p "$proxy_state" && rm -f "$proxy_state/{PORT_FILE}" || proxy_fail "cannot write $proxy_state"
  echo "=== $(date '+%Y-%m-%d %H:%M:%S') start (array element $SLURM_ARRAY_TASK_ID)" >> "$proxy_log"
  {runner} -m launcher.proxy --config {q(f"{folder}/{CONFIG_FILE}")} --state-dir "$proxy_state" \\
--node-dir "$proxy_dir" --cache-dir {q(cache)} --log "$proxy_log" --port "$proxy_port" \\
>> "$proxy_log" 2>&1 < /dev/null 8>&- 9>&- &
  proxy_pid=$!
  deadline=$(( $(date +%s) + {wait} )) see="see $proxy_log"
  until [ -s "$proxy_state/{PORT_FILE}" ]; do
    kill -0 "$proxy_pid" 2>/dev/null || proxy_fail "the endpoint proxy exited before it was ready; $see"
    [ "$(date +%s)" -lt "$deadline" ] || proxy_fail "the endpoint proxy was not ready within {wait} s; $see"
    sleep 0.05
  done
fi
exec 8>&-
"""
