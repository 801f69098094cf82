"""The container core local and Slurm share: config base, run.sh rendering (docker, or the scheduler's
TaskLaunch), the Docker client, planning an invocation and each task into a container, and the executor
shape (status, kill, logs) over a scheduler."""
