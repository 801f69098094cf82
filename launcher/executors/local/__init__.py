"""The local executor: each task is a Docker container started by generated scripts on this machine.

config.py its settings, executor.py the executor (plan, start, status, kill), render.py run_all.sh.
This face re-exports what other modules and plugins import from `launcher.executors.local`.
"""

from launcher.executors.local.config import LocalConfig
from launcher.executors.local.executor import LocalExecutor, live_proxy_stats, run_all_view

__all__ = ["LocalConfig", "LocalExecutor", "live_proxy_stats", "run_all_view"]
