#!/usr/bin/env bash
# A private single-node Slurm cluster (munge + slurmctld + slurmd) for tests, started as root.
#
# Usage: local/slurm_test_cluster.sh start <dir>   start it; prints the SLURM_CONF to export for clients
#        local/slurm_test_cluster.sh stop <dir>    stop its daemons (by the pids they wrote under <dir>)
#
# Everything lives under <dir>: the munge key and socket (nothing in /etc is touched), slurm.conf, state,
# spool, pid and log files. Ports: the first two free from 26817 up (not Slurm's defaults; a second cluster
# on the machine gets others), one node named after `hostname -s`
# with the machine's CPUs (getconf: `nproc` honours OMP_NUM_THREADS), one partition "debug";
# proctrack/linuxproc and task/none (no cgroups needed), accounting off. Needs root and Debian's slurm-wlm and munge (apt-get install slurm-wlm munge).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -eq 2 ] || { usage >&2; exit 1; }
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
conf="${dir}/etc/slurm.conf"

stop() {
  local name pid
  for name in slurmd slurmctld munged; do
    [ -f "${dir}/run/${name}.pid" ] || continue
    pid=$(cat "${dir}/run/${name}.pid")
    kill "${pid}" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${pid}" 2>/dev/null || true
    rm -f "${dir}/run/${name}.pid"
  done
}

case "${action}" in
  stop) stop; exit 0 ;;
  start) ;;
  *) usage >&2; exit 1 ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "ERROR: $0: starting Slurm daemons needs root" >&2; exit 1; }
for tool in munged mungekey slurmctld slurmd sinfo; do
  command -v "${tool}" >/dev/null || {
    echo "ERROR: $0: ${tool} not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done
stop  # a cluster left running in <dir> by an earlier start
mkdir -p "${dir}"/{etc,state,spool,run,log,munge}
chmod 700 "${dir}/munge"
[ -f "${dir}/munge/munge.key" ] || mungekey -c -k "${dir}/munge/munge.key"
munged --force --key-file "${dir}/munge/munge.key" --socket "${dir}/munge/munge.socket" \
  --pid-file "${dir}/run/munged.pid" --log-file "${dir}/log/munged.log" --seed-file "${dir}/munge/munge.seed"

# the first free ports from 26817 up: nothing accepts a connection there
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
for port in $(seq 26817 26917); do
  port_is_free "${port}" && ports+=("${port}")
  [ "${#ports[@]}" -lt 2 ] || break
done
[ "${#ports[@]}" -eq 2 ] || { echo "ERROR: $0: no two free ports in 26817-26917" >&2; stop; exit 1; }

host=$(hostname -s)
cat > "${conf}" <<CONF
ClusterName=sasvtest
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${ports[0]}
SlurmdPort=${ports[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${dir}/munge/munge.socket
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/run/slurmctld.pid
SlurmdPidFile=${dir}/run/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=${host} CPUs=$(getconf _NPROCESSORS_ONLN) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="${conf}"
slurmctld -f "${conf}"
slurmd -f "${conf}"
for _ in $(seq 100); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  [ "${state}" = idle ] && { echo "SLURM_CONF=${conf}"; exit 0; }
  sleep 0.2
done
echo "ERROR: $0: the node did not become idle (state '${state:-none}'); see ${dir}/log/" >&2
stop
exit 1
