#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the `ssl sweep --launcher slurm` tests (CI runs
# it as root on a fresh Debian 12). Idempotent: when the node already answers idle with this
# configuration it returns within a second, and it needs root only to change something.
#
#   - installs slurm-wlm and munge with apt-get when they are missing;
#   - writes /etc/slurm/slurm.conf: one node (this host, `nproc` CPUs), one partition `debug`,
#     no cgroups (proctrack/linuxproc, task/none) and no accounting database (so `sacct` does
#     not work here; ssl sweep follows jobs with squeue and the exit files its job script writes);
#   - creates the munge key and starts munged, slurmctld and slurmd directly (no systemd);
#   - waits until `sinfo` shows the node idle.
#
# Environment: SLURM_SETUP_TIMEOUT (seconds to wait for the node, default 90).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
TIMEOUT=${SLURM_SETUP_TIMEOUT:-90}

log() { echo "setup-slurm: $*" >&2; }
die() { log "$*"; exit 1; }

desired_conf() {
  cat <<EOF
# Written by ssl's scripts/setup-slurm.sh: a single-node test cluster.
ClusterName=ssl
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
MinJobAge=600
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() {
  sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true
}

ready() {
  case "$(node_state)" in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
  esac
}

# a daemon's pid file names a live process (readable without root, unlike kill -0 on root's)
daemon_up() { [ -f "$1" ] && [ -d "/proc/$(cat "$1")" ]; }

# Fast path: nothing to change.
if command -v sinfo >/dev/null 2>&1 && [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$(desired_conf)" ] && daemon_up /run/slurmctld.pid && daemon_up /run/slurmd.pid && ready; then
  exit 0
fi

[ "$(id -u)" = 0 ] || die "Slurm is not set up here and setting it up needs root; run: sudo $0"

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_daemon() { # <pid file>
  if pid_alive "$1"; then
    local pid
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

# --- packages ---------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1; then
  log "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # no service may start during the install (there is no init system to manage them here)
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  install() { apt-get install -y -q --no-install-recommends slurm-wlm munge >/tmp/setup-slurm-apt.log 2>&1; }
  if ! install; then
    apt-get update -q >>/tmp/setup-slurm-apt.log 2>&1 || true
    install || { [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d; tail -n 20 /tmp/setup-slurm-apt.log >&2; die "apt-get install slurm-wlm munge failed (log: /tmp/setup-slurm-apt.log)"; }
  fi
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# --- munge ------------------------------------------------------------------------------------
MUNGE_USER=munge
id "$MUNGE_USER" >/dev/null 2>&1 || MUNGE_USER=root
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating the munge key"
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile=/etc/munge/munge.key --force
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
chown -R "$MUNGE_USER": /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 700 /etc/munge /var/lib/munge /var/log/munge
chmod 755 /run/munge
chmod 400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  rm -f /run/munge/munge.socket.2.lock
  if [ "$MUNGE_USER" = root ]; then
    munged --force
  else
    runuser -u "$MUNGE_USER" -- munged
  fi
  for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
  munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurm ------------------------------------------------------------------------------------
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
restart=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$(desired_conf)" ]; then
  log "writing $CONF"
  desired_conf >"$CONF.tmp"
  mv -f "$CONF.tmp" "$CONF"
  restart=1
fi
if [ "$restart" = 1 ]; then
  stop_daemon /run/slurmd.pid
  stop_daemon /run/slurmctld.pid
fi
if ! pid_alive /run/slurmctld.pid; then
  log "starting slurmctld"
  slurmctld
fi
if ! pid_alive /run/slurmd.pid; then
  log "starting slurmd"
  slurmd
fi

deadline=$((SECONDS + TIMEOUT))
while ! ready; do
  state=$(node_state)
  case "$state" in
    down* | drain* | drained*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  if [ "$SECONDS" -ge "$deadline" ]; then
    tail -n 15 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    die "node $NODE is '${state:-not listed}' after ${TIMEOUT}s, not idle (logs in /var/log/slurm)"
  fi
  sleep 0.5
done
log "node $NODE is $(node_state): $CPUS CPUs, partition debug"
