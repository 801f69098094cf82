"""The container core local and Slurm share: config base, run.sh rendering (docker, pyxis), the Docker
client, planning a task into a container, and the executor shape (status, kill, logs) over a scheduler."""
