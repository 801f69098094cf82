#!/usr/bin/env bash
#SBATCH --job-name=launcher-0000abcd-export
#SBATCH --output=/data/evals/2026-01-01-00-00-00-0000abcd/logs/export.log
#SBATCH --open-mode=append
#SBATCH --time=00:30:00
#SBATCH --nodes=1
#SBATCH --ntasks=1
# Invocation 0000abcd: exports its results once every array element has ended
# (execution.auto_export.destinations, settings in auto_export.json). Its outcome never
# changes the run's; a failure says how to retry with `launcher export`.
cd /data/evals/2026-01-01-00-00-00-0000abcd || exit 1
exec docker run --rm --init --pull never --name "launcher-0000abcd-export" --label launcher.invocation=0000abcd --label launcher.job=0000abcd.export --network host --user "$(id -u):$(id -g)" -w "$PWD" -v /data/evals/2026-01-01-00-00-00-0000abcd:/data/evals/2026-01-01-00-00-00-0000abcd -e MLFLOW_TRACKING_URI -e WANDB_API_KEY -e WANDB_MODE launcher-tools:0.1.0 python3 -m launcher.export auto "$PWD" < /dev/null
