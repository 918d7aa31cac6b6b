#!/usr/bin/env bash
# Installs and starts what ctrlplane needs on this machine: npm packages, the Temporal CLI
# (dev server), the Docker engine with the local test image, and PostgreSQL. Idempotent: when everything is
# already there it only checks, in well under a second or two. Daemons it starts log to .data/logs/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="$ROOT/.data"
LOGS="$DATA/logs"
mkdir -p "$LOGS"
source "$ROOT/scripts/install-node.sh" # the Node.js everything below and every npm script runs on, first on PATH

say() { printf 'setup: %s\n' "$*"; }
die() {
  printf 'setup: ERROR: %s\n' "$*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
SETUP_STARTED=$SECONDS

# Runs "$@" with only stdin, stdout and stderr open. Daemons started here outlive this script: any other fd they
# inherited (the caller's lock, a CI runner's pipe) would stay open as long as they run, holding that lock or
# keeping that pipe from ever reaching its end.
without_inherited_fds() {
  local fd
  for fd in /proc/self/fd/*; do
    fd=${fd##*/}
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  exec "$@"
}

# Runs a long command ("$@") and says every 20 s that it is still at it, then how long it took. The command runs
# without fd 9 (the setup lock, see below) so nothing it leaves behind holds the lock.
with_progress() {
  local what=$1 t0=$SECONDS pid rc=0 next=20
  shift
  say "$what"
  "$@" 9>&- &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - t0 >= next)); then
      say "... still $what ($((SECONDS - t0))s so far)"
      next=$((next + 20))
    fi
  done
  wait "$pid" || rc=$?
  if ((rc == 0)); then say "$what: took $((SECONDS - t0))s"; else say "$what: FAILED (exit $rc) after $((SECONDS - t0))s"; fi
  return "$rc"
}

# One setup at a time (npm start and npm test may both call this). Fd 9 holds the lock; every daemon started
# below is started without it (and without any other inherited fd: without_inherited_fds).
if have flock; then
  exec 9>"$DATA/setup.lock"
  flock -w 900 9 || die "another setup.sh has held $DATA/setup.lock for 15 minutes"
fi

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_install() {
  have apt-get || die "apt-get not found; install by hand: $*"
  # Keep package post-install scripts from starting services (no init system here); this script starts them.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  local rc=0
  {
    if [[ $APT_UPDATED == 0 ]]; then
      with_progress "apt-get update" apt-get update -qq && APT_UPDATED=1
    fi
    with_progress "apt-get install $*" apt-get install -y -qq "$@" </dev/null
  } || rc=$?
  if [[ $made_policy == 1 ]]; then rm -f "$policy"; fi
  [[ $rc == 0 ]] || die "apt-get install $* failed (exit $rc)"
}

# ---------------------------------------------------------------------------------------------------------------
# a. npm packages
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  # npm 11 holds back the install scripts of esbuild/protobufjs/ssh2/cpu-features/@swc/core: not needed here.
  with_progress "npm ci" npm ci --no-audit --no-fund </dev/null
else
  say "node_modules up to date"
fi

# ---------------------------------------------------------------------------------------------------------------
# b. Temporal CLI (dev server: real server, SQLite, Web UI)
TEMPORAL_VERSION=v1.5.1 # later tags carry a `replace` directive and `go install` refuses them
temporal_bin=""
if [[ -n ${TEMPORAL_CLI:-} && -x ${TEMPORAL_CLI} ]]; then
  temporal_bin="$TEMPORAL_CLI"
elif have temporal; then
  temporal_bin="$(command -v temporal)"
elif [[ -x $ROOT/.tools/bin/temporal ]]; then
  temporal_bin="$ROOT/.tools/bin/temporal"
else
  if ! have go && [[ -x /usr/local/go/bin/go ]]; then export PATH="$PATH:/usr/local/go/bin"; fi
  have go || die "the Temporal CLI is missing and Go is not installed (looked in PATH and /usr/local/go/bin)"
  export HOME="${HOME:-/root}"
  mkdir -p "$ROOT/.tools/bin"
  with_progress "building the Temporal CLI $TEMPORAL_VERSION with go install (minutes on a new machine, once)" \
    env GOBIN="$ROOT/.tools/bin" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_VERSION" </dev/null ||
    die "go install of the Temporal CLI failed"
  temporal_bin="$ROOT/.tools/bin/temporal"
fi
temporal_bin="$(cd "$(dirname "$temporal_bin")" && pwd)/$(basename "$temporal_bin")"
if [[ "$(cat "$DATA/temporal-cli-path" 2>/dev/null || true)" != "$temporal_bin" ]]; then
  printf '%s\n' "$temporal_bin" >"$DATA/temporal-cli-path"
fi
say "temporal CLI: $temporal_bin"

# ---------------------------------------------------------------------------------------------------------------
# b2. Kubernetes control plane for the tests and CTRLPLANE_DEV_KUBERNETES: etcd, kube-*, kubectl, kwok, helm
bash "$ROOT/scripts/k8s-test-cluster.sh" build </dev/null 9>&- || die "building the Kubernetes control plane failed"

# ---------------------------------------------------------------------------------------------------------------
# c. Docker engine (containerd + dockerd), started in the background when it does not answer
CONTAINERD_SOCK=/run/containerd/containerd.sock
DOCKER_PIDFILE=/var/run/docker.pid

docker_up() { have docker && timeout 20 docker info >/dev/null 2>&1; }

busybox_static_ok() { [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; }

# A process whose pid is in $1 and whose name is $2, still alive?
pidfile_alive() {
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == "$2" ]]
}

containerd_up() {
  if have ctr; then
    timeout 5 ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1
  else
    [[ -S $CONTAINERD_SOCK ]] && pgrep -x containerd >/dev/null 2>&1
  fi
}

start_docker() {
  case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
    unix:///var/run/docker.sock | unix:///run/docker.sock) ;;
    *) die "DOCKER_HOST=$DOCKER_HOST does not answer 'docker info'; start that engine or unset DOCKER_HOST" ;;
  esac
  local pkgs=()
  if ! have dockerd || ! have docker || ! have containerd; then pkgs+=(docker.io); fi
  if ! busybox_static_ok; then pkgs+=(busybox-static); fi
  if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi

  if ! containerd_up; then
    # Only the containerd this script starts (no arguments) counts: a test's private engine runs its own with
    # --config and never answers on the shared socket.
    if pgrep -fx containerd >/dev/null 2>&1; then
      say "containerd is running but not answering yet; waiting"
    else
      say "starting containerd (log: .data/logs/containerd.log)"
      (without_inherited_fds setsid nohup containerd </dev/null >>"$LOGS/containerd.log" 2>&1) &
    fi
    local i
    for ((i = 0; i < 60; i++)); do
      containerd_up && break
      sleep 0.5
    done
    containerd_up || {
      tail -n 30 "$LOGS/containerd.log" >&2 || true
      die "containerd did not come up within 30s"
    }
  fi

  if pgrep -fx "dockerd --containerd=$CONTAINERD_SOCK" >/dev/null 2>&1; then
    say "dockerd is running but not answering yet; waiting"
  else
    # A pid file left by a killed daemon blocks dockerd when its pid is now some other process: drop it.
    if [[ -e $DOCKER_PIDFILE ]] && ! pidfile_alive "$DOCKER_PIDFILE" dockerd; then rm -f "$DOCKER_PIDFILE"; fi
    say "starting dockerd (log: .data/logs/dockerd.log)"
    (without_inherited_fds setsid nohup dockerd --containerd="$CONTAINERD_SOCK" </dev/null >>"$LOGS/dockerd.log" 2>&1) &
  fi
  local deadline=$((SECONDS + 60))
  until docker_up; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOGS/dockerd.log" >&2 || true
      die "dockerd did not answer 'docker info' within 60s"
    fi
    sleep 0.5
  done
}

if docker_up; then
  say "docker engine answering"
else
  docker_t0=$SECONDS
  start_docker
  say "docker engine started in $((SECONDS - docker_t0))s"
fi

# ---------------------------------------------------------------------------------------------------------------
# d. Local test images (nothing can be pulled)
if ! busybox_static_ok; then apt_install busybox-static; fi
bash "$ROOT/scripts/build-test-images.sh"

# ---------------------------------------------------------------------------------------------------------------
# e. PostgreSQL (the database itself and its migrations are made by the Node code)
pg_host=127.0.0.1
pg_port=5432
manage_pg=1
if [[ -n ${DATABASE_URL:-} ]]; then
  if [[ $DATABASE_URL =~ ^[a-z]+://([^/@]*@)?(127\.0\.0\.1|localhost)(:([0-9]+))?([/?]|$) ]]; then
    pg_port="${BASH_REMATCH[4]:-5432}"
  else
    manage_pg=0
  fi
fi

pg_up() {
  if have pg_isready; then
    pg_isready -q -h "$pg_host" -p "$pg_port" -t 3 >/dev/null 2>&1
  else
    timeout 3 bash -c "exec 3<>/dev/tcp/$pg_host/$pg_port" 2>/dev/null
  fi
}

if [[ $manage_pg == 0 ]]; then
  say "DATABASE_URL points at another host; not managing PostgreSQL"
elif pg_up; then
  say "postgresql answering on $pg_host:$pg_port"
else
  fresh=0
  if ! have pg_ctlcluster || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql
    fresh=1
  fi
  pg_version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z $pg_version || ! -d /etc/postgresql/$pg_version/main ]]; then
    pg_version="${pg_version:-$(ls /usr/lib/postgresql | sort -V | tail -n 1)}"
    say "creating PostgreSQL cluster $pg_version/main"
    pg_createcluster "$pg_version" main 9>&- >/dev/null
    fresh=1
  fi
  if [[ $fresh == 1 ]]; then
    # Fresh install only: let user postgres in over TCP on loopback without a password, as on the dev machines.
    hba="/etc/postgresql/$pg_version/main/pg_hba.conf"
    if ! grep -q '^host[[:space:]]\+all[[:space:]]\+postgres[[:space:]]\+127\.0\.0\.1/32[[:space:]]\+trust' "$hba"; then
      say "pg_hba.conf: trust for user postgres on 127.0.0.1 and ::1"
      {
        printf '# added by ctrlplane scripts/setup.sh\n'
        printf 'host all postgres 127.0.0.1/32 trust\n'
        printf 'host all postgres ::1/128 trust\n'
        cat "$hba"
      } >"$hba.new"
      chown --reference="$hba" "$hba.new" && chmod --reference="$hba" "$hba.new"
      mv "$hba.new" "$hba"
    fi
  fi
  say "starting PostgreSQL $pg_version/main"
  (without_inherited_fds pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start </dev/null) ||
    say "pg_ctlcluster start returned non-zero (already running?)"
  if [[ $fresh == 1 ]]; then pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload 9>&- || true; fi
  for ((i = 0; i < 60; i++)); do
    pg_up && break
    sleep 0.5
  done
  pg_up || die "PostgreSQL does not answer on $pg_host:$pg_port (see /var/log/postgresql/)"
  say "postgresql answering on $pg_host:$pg_port"
fi

# ---------------------------------------------------------------------------------------------------------------
# f. Chromium for the /docs page test (headless, driven by playwright-core; no browser is downloaded)
if [[ ! -x /usr/bin/chromium ]]; then apt_install chromium; fi
say "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'installed')"

say "done in $((SECONDS - SETUP_STARTED))s"
