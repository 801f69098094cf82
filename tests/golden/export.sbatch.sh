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
exec PYTHON -m launcher.export auto "$PWD" < /dev/null
