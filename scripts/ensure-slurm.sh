#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the slurm executor's tests: installs slurm-wlm and
# munge with apt if needed (root), writes a minimal slurm.conf if there is none, starts munged,
# slurmctld and slurmd, and waits until the node is idle.
set -euo pipefail
if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "error: no Slurm cluster answers; start one (or run as root so this script can)" >&2; exit 1
fi
if ! command -v slurmctld >/dev/null 2>&1; then
  echo "installing slurm-wlm and munge with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
node=$(hostname -s)
conf=/etc/slurm/slurm.conf
if [ ! -f "$conf" ]; then
  mkdir -p /etc/slurm
  cat > "$conf" <<CONF
# Written by launcher's scripts/ensure-slurm.sh: a one-node cluster for tests.
ClusterName=launcher
SlurmctldHost=$node(127.0.0.1)
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmUser=root
SlurmdUser=root
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/lib/slurm/slurmd
StateSaveLocation=/var/lib/slurm/slurmctld
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
CONF
fi
mkdir -p /run/munge /var/lib/slurm/slurmd /var/lib/slurm/slurmctld /var/log/slurm
chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null;
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then echo "slurm is up"; exit 0; fi
  scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "error: the Slurm node did not become idle within 60 s; see /var/log/slurm/" >&2
exit 1
