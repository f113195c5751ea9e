#!/usr/bin/env bash
# Single-node SLURM test cluster (munge + slurmctld + slurmd, partition "gpu" with 2 fake GPUs).
#   bash tests/slurm/cluster.sh start|stop|status
# Needs root (Debian/Ubuntu). Installs slurmctld/slurmd/slurm-client/munge with apt if missing.
# Writes /etc/slurm/{slurm,gres}.conf (the snakemake slurm plugin's job step drops SLURM_CONF,
# so the default path is the only one nested srun calls see) and refuses to overwrite a
# slurm.conf it did not write. State, logs and pid files live in $DDEP_SLURM_STATE.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # slurmd, slurmctld, munged live there; non-login PATHs may lack it
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${DDEP_SLURM_STATE:-/var/tmp/ddep-slurm}"
conf_dir=/etc/slurm
marker="# ddep-test-cluster"
ngpu=2
timeout_s="${DDEP_SLURM_TIMEOUT:-60}"

log() { echo "cluster.sh: $*" >&2; }

die() {
  log "ERROR: $*"
  for f in "$state"/munged.log "$state"/slurmctld.log "$state"/slurmd.log; do
    [ -s "$f" ] && { echo "----- tail $f" >&2; tail -n 40 "$f" >&2; }
  done
  exit 1
}

alive() { [ -s "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

install_packages() {
  local missing=()
  for cmd in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${cmd%%:*}" >/dev/null || missing+=("${cmd##*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
}

write_config() {
  if [ -e "$conf_dir/slurm.conf" ] && ! head -n1 "$conf_dir/slurm.conf" | grep -q "^$marker"; then
    die "$conf_dir/slurm.conf exists and was not written by this script; not overwriting it"
  fi
  mkdir -p "$conf_dir" "$state/ctld" "$state/d"
  local host hw i
  host="$(hostname -s)"
  hw="$(slurmd -C | head -n1)"  # NodeName=... CPUs=2 Boards=1 ... RealMemory=24105
  field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
  for ((i = 0; i < ngpu; i++)); do
    [ -c "/dev/fakegpu$i" ] || mknod "/dev/fakegpu$i" c 1 3  # same major/minor as /dev/null
  done
  sed -e "s|@HOST@|$host|g" -e "s|@STATE@|$state|g" -e "s|@NGPU@|$ngpu|g" \
    -e "s|@CPUS@|$(field CPUs)|" -e "s|@BOARDS@|$(field Boards)|" \
    -e "s|@SOCKETS@|$(field SocketsPerBoard)|" -e "s|@CORES@|$(field CoresPerSocket)|" \
    -e "s|@THREADS@|$(field ThreadsPerCore)|" -e "s|@MEM@|$(field RealMemory)|" \
    "$here/slurm.conf.in" >"$conf_dir/slurm.conf"
  sed -e "s|@GPU_FILES@|/dev/fakegpu[0-$((ngpu - 1))]|" "$here/gres.conf.in" >"$conf_dir/gres.conf"
}

# Start a daemon in the foreground of a detached session (its log: stderr); record its pid.
launch() {
  local name="$1"; shift
  setsid "$@" >>"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

start_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi  # already running
  [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge /var/lib/munge /var/log/munge
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  launch munged runuser -u munge -- munged --foreground
  wait_for "munged" "munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1"
}

wait_for() {  # wait_for WHAT SHELL-CONDITION; fails fast if a daemon we started has died
  local what="$1" cond="$2" t=0 name
  until eval "$cond"; do
    for name in munged slurmctld slurmd; do
      [ ! -s "$state/$name.pid" ] || alive "$name" || die "$name exited (see its log below)"
    done
    ((t++ < timeout_s * 2)) || die "timed out after ${timeout_s}s waiting for $what"
    sleep 0.5
  done
}

node_state() { timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -n1; }

cluster_ready() {
  [ "$(node_state)" = idle ] && timeout 30 srun -N1 -n1 -t 1 true >/dev/null 2>&1
}

start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  mkdir -p "$state"
  if alive slurmctld && alive slurmd && cluster_ready; then log "already running"; return; fi
  stop_daemons quiet
  install_packages
  # e.g. started by systemd right after apt-get install: it would hold the ports
  local other
  other="$(pgrep -a -x slurmctld; pgrep -a -x slurmd)" || true
  [ -z "$other" ] || die "slurmctld/slurmd not started by this script is running: $other"
  rm -rf "$state/ctld" "$state/d" "$state"/*.log  # fresh job ids and an empty queue
  write_config
  start_munge
  local t0=$SECONDS
  launch slurmctld slurmctld -D -i
  wait_for "slurmctld" "scontrol ping 2>/dev/null | grep -q UP"
  launch slurmd slurmd -D
  wait_for "node ${HOSTNAME%%.*} idle (now: \$(node_state))" '[ "$(node_state)" = idle ]'
  wait_for "srun true" "timeout 30 srun -N1 -n1 -t 1 true >/dev/null 2>&1"
  # The gpu partition must really offer the fake GPUs.
  timeout 30 srun -n1 -t 1 --gpus=1 true >/dev/null 2>&1 || die "srun --gpus=1 failed"
  log "up in $((SECONDS - t0))s: $(sinfo -h -o '%P %D %T %G')"
}

stop_daemons() {  # signal only what this script started (pid files), then wait for all
  local name pid t pids=()
  alive slurmctld && { timeout 10 scancel -u "$(id -un)" 2>/dev/null || true; }  # no orphan steps
  for name in slurmd slurmctld munged; do
    [ -s "$state/$name.pid" ] || continue
    pid="$(cat "$state/$name.pid")"
    rm -f "$state/$name.pid"
    kill -0 "$pid" 2>/dev/null || continue
    # each daemon leads its own session (setsid): signal the group (runuser+munged, slurmscriptd)
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
    [ "${1:-}" = quiet ] || log "stopping $name ($pid)"
  done
  for pid in "${pids[@]}"; do
    for ((t = 0; t < 60; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM; sending SIGKILL"; kill -KILL -- "-$pid" 2>/dev/null || true; }
  done
  return 0
}

status() {
  local ok=0 name
  for name in munged slurmctld slurmd; do
    if alive "$name"; then echo "$name: running (pid $(cat "$state/$name.pid"))"; else echo "$name: not running"; ok=1; fi
  done
  echo "node: $(node_state || true)"
  timeout 10 sinfo 2>/dev/null || true
  return $ok
}

# Once stopped, SLURM clients must fail at once: the snakemake slurm plugin runs `scontrol show
# config` whenever snakemake starts (local runs too), and with the controller gone that waits
# MessageTimeout - 1 s (9 s by default) in each of the tests' Snakemake runs. `start` rewrites it.
fail_fast() {
  [ -e "$conf_dir/slurm.conf" ] && head -n1 "$conf_dir/slurm.conf" | grep -q "^$marker" || return 0
  sed -i '/^MessageTimeout=/d' "$conf_dir/slurm.conf"
  echo "MessageTimeout=1  # the cluster is stopped: clients give up at once" >>"$conf_dir/slurm.conf"
}

case "${1:-}" in
  start) start ;;
  stop) stop_daemons && fail_fast ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
