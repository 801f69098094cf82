"""Fake evaluation task for executor tests. Modes: ok, fail, sleep, http URL."""

import hashlib
import json
import os
import signal
import sys
import time
import urllib.request

RESULTS = "/results"


def progress(done, total):
    with open(f"{RESULTS}/progress.json.tmp", "w") as fh:
        json.dump({"done": done, "total": total}, fh)
    os.replace(f"{RESULTS}/progress.json.tmp", f"{RESULTS}/progress.json")


def on_term(*_):
    with open(f"{RESULTS}/sigterm", "w") as fh:
        fh.write("got SIGTERM\n")
    print("received SIGTERM, exiting", flush=True)
    sys.exit(143)


signal.signal(signal.SIGTERM, on_term)
mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
with open(f"{RESULTS}/env.json", "w") as fh:  # names and digests only, never values
    json.dump({k: hashlib.sha256(v.encode()).hexdigest() for k, v in os.environ.items()}, fh)
with open(f"{RESULTS}/attempts.log", "a") as fh:
    fh.write(f"{mode} {os.getuid()}\n")
print(f"task {os.environ.get('LAUNCHER_TASK')} mode {mode}", flush=True)
if mode == "ok":
    progress(3, 3)
elif mode == "fail":
    print("boom: failing on purpose", flush=True)
    sys.exit(3)
elif mode == "sleep":
    for i in range(600):
        progress(i, 600)
        time.sleep(0.5)
elif mode == "http":
    body = urllib.request.urlopen(sys.argv[2], timeout=10).read().decode()
    with open(f"{RESULTS}/http.txt", "w") as fh:
        fh.write(body)
    progress(1, 1)
