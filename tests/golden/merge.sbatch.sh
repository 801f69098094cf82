#!/usr/bin/env bash
#SBATCH --job-name=launcher-0000abcd-merge
#SBATCH --output=/data/evals/x/logs/merge.log
#SBATCH --open-mode=append
#SBATCH --time=04:00:00
#SBATCH --nodes=1
#SBATCH --ntasks=1
# Invocation 0000abcd: merges each sharded task once its shards (array elements)
# have ended.
cd /data/evals/x || exit 1
status=0
for task in launcher.gsm8k_cot_zeroshot; do
  bash "$task/run.sh" < /dev/null || status=1
done
exit "$status"
