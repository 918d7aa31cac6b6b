#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for tests and the dev stack, with no kubelet and no container
# runtime: etcd (Debian's etcd-server), kube-apiserver, kube-controller-manager and kube-scheduler (v1.33.13,
# built from the Go module proxy) and kwok, which plays one fake node whose pods go Running. kubectl and helm
# are built the same way (the Kubernetes provider's helm source runs `helm upgrade --install`).
#
#   bash scripts/k8s-test-cluster.sh build        # once into .tools/bin; skipped when already at these versions
#   bash scripts/k8s-test-cluster.sh start DIR    # state in DIR (kept: a second start resumes it); prints
#                                                 # DIR/admin.kubeconfig (cluster-admin)
#   bash scripts/k8s-test-cluster.sh stop DIR     # stops what `start DIR` started
#
# `start` picks free loopback ports unless K8S_API_PORT / K8S_ETCD_PORT / K8S_ETCD_PEER_PORT / K8S_KWOK_PORT
# are set.
# The service CIDR (10.96.0.0/16) and kwok's pod IPs (10.0.0.0/24) are only numbers the API server hands out:
# nothing listens there and nothing may be sent there. Only the API server's 127.0.0.1 port is for clients.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.tools/bin"
K8S_VERSION=v1.33.13 # k8s.io/kubernetes; only some tags are on the proxy
STAGING_VERSION=v0.33.13 # the published staging modules (k8s.io/api, client-go, …) of that release
KWOK_VERSION=v0.7.0      # built against k8s v0.33
HELM_VERSION=v3.22.0

say() { printf 'k8s-test-cluster: %s\n' "$*"; }
die() {
  printf 'k8s-test-cluster: ERROR: %s\n' "$*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------------------------
# build

stamp() { cat "$BIN/.$1.version" 2>/dev/null || true; }
built_at() { # name version binaries…
  local name=$1 version=$2 b
  shift 2
  [[ "$(stamp "$name")" == "$version" ]] || return 1
  for b in "$@"; do [[ -x $BIN/$b ]] || return 1; done
}

# Runs a long Go command with its output in a log, printing a line every 30 s so a cold build is visibly alive:
# how many packages `go build -v` compiled, or modules `go` downloaded, so far.
with_progress() { # label log command…
  local label=$1 log=$2 start=$SECONDS pid rc=0
  shift 2
  "$@" >"$log" 2>&1 </dev/null 9>&- &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "  $label: $((SECONDS - start))s, $(grep -vc '^go: ' "$log" || true) packages compiled," \
        "$(grep -c '^go: downloading' "$log" || true) modules downloaded so far"
    fi
  done
  wait "$pid" || rc=$?
  if [[ $rc != 0 ]]; then
    tail -n 30 "$log" >&2
    die "$label failed (exit $rc; full log: $log)"
  fi
  say "  $label: done in $((SECONDS - start))s"
}

install_etcd() {
  have etcd && return 0
  [[ -x /usr/bin/etcd ]] && return 0
  have apt-get || die "etcd is missing and apt-get is not here to install it (Debian package etcd-server)"
  say "apt-get install etcd-server"
  # Keep the package's post-install script from starting a system etcd (no init system here; we start our own).
  local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1; fi
  {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq etcd-server </dev/null 9>&- ||
      { apt-get -o DPkg::Lock::Timeout=300 update -qq 9>&- &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq etcd-server </dev/null 9>&-; }
  } || rc=$?
  if [[ $made_policy == 1 ]]; then rm -f "$policy"; fi
  [[ $rc == 0 ]] || die "apt-get install etcd-server failed (exit $rc)"
}

build_kubernetes() {
  # `go install k8s.io/kubernetes/cmd/...` refuses the module (it has replace directives pointing at ./staging):
  # a wrapper module requires it and replaces every staging module with its published release instead.
  local mod="$ROOT/.tools/build/kubernetes" gomod m ld p minor
  rm -rf "$mod" && mkdir -p "$mod"
  cd "$mod"
  go mod init ctrlplane.local/kubernetes-tools >/dev/null 2>&1
  cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION" -godebug=default=go1.24
  say "  downloading k8s.io/kubernetes@$K8S_VERSION and its modules (~570 MB cold)"
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
  # sample-controller and sample-cli-plugin are not published for v0.33 and not needed.
  for m in $(sed -n '/^replace (/,/^)/p' "$gomod" | awk '/=>/{print $1}' | grep -vE 'sample-(controller|cli-plugin)'); do
    go mod edit -replace="$m=$m@$STAGING_VERSION"
  done
  with_progress "go mod tidy" "$mod/tidy.log" nice -n 15 go mod tidy
  # Without the stamped version /version answers v0.0.0-master and kubectl refuses to talk to it.
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld="$ld -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  with_progress "go build kube-apiserver, kube-controller-manager, kube-scheduler, kubectl" "$mod/build.log" \
    nice -n 15 go build -v -trimpath -ldflags="$ld" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  cd "$ROOT"
  printf '%s\n' "$K8S_VERSION" >"$BIN/.kubernetes.version"
}

build_go_install() { # name version package ldflags
  local name=$1 version=$2 pkg=$3 ld=$4
  mkdir -p "$ROOT/.tools/build"
  with_progress "go install $pkg@$version" "$ROOT/.tools/build/$name.log" \
    env GOBIN="$BIN" nice -n 15 go install -v -trimpath -ldflags="$ld" "$pkg@$version"
  printf '%s\n' "$version" >"$BIN/.$name.version"
}

cmd_build() {
  install_etcd
  local need=()
  built_at kubernetes "$K8S_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl || need+=(kubernetes)
  built_at kwok "$KWOK_VERSION" kwok || need+=(kwok)
  built_at helm "$HELM_VERSION" helm || need+=(helm)
  if ((${#need[@]} == 0)); then
    say "kubernetes $K8S_VERSION, kwok $KWOK_VERSION, helm $HELM_VERSION in .tools/bin"
    return 0
  fi
  if ! have go && [[ -x /usr/local/go/bin/go ]]; then export PATH="$PATH:/usr/local/go/bin"; fi
  have go || die "Go is needed to build ${need[*]} (looked in PATH and /usr/local/go/bin)"
  export HOME="${HOME:-/root}"
  mkdir -p "$BIN"
  local t0=$SECONDS
  say "building ${need[*]} into .tools/bin once (cold: 10–40 min on 2 cores, ~4 GB of Go caches; warm: ~40 s)"
  for n in "${need[@]}"; do
    case $n in
      kubernetes) build_kubernetes ;;
      kwok) build_go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok "-s -w" ;;
      helm) build_go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
        "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
    esac
  done
  say "built ${need[*]} in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------------------------------------------
# start / stop

# A free TCP port on 127.0.0.1 (nothing answers a connect there), from a range away from the usual defaults.
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found on 127.0.0.1"
}

# True when the pid in DIR/NAME.pid is alive and is the program we started (a recycled pid is not).
running() { # dir name program
  local pid
  pid="$(cat "$1/$2.pid" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == "${3:0:15}" ]]
}

# Signals the components with TERM (etcd last, once nothing writes to it), waits up to 10 s for each group, KILLs
# what is left.
cmd_stop() {
  local dir=$1 group c name prog i alive
  [[ -d $dir ]] || return 0
  for group in "kwok:kwok scheduler:kube-scheduler controller-manager:kube-controller-manager apiserver:kube-apiserver" \
    "etcd:etcd"; do
    for c in $group; do
      name=${c%%:*} prog=${c#*:}
      if running "$dir" "$name" "$prog"; then kill "$(cat "$dir/$name.pid")" 2>/dev/null || true; fi
    done
    for ((i = 0; i < 100; i++)); do
      alive=0
      for c in $group; do running "$dir" "${c%%:*}" "${c#*:}" && alive=1; done
      ((alive)) || break
      sleep 0.1
    done
    for c in $group; do
      name=${c%%:*} prog=${c#*:}
      if running "$dir" "$name" "$prog"; then kill -9 "$(cat "$dir/$name.pid")" 2>/dev/null || true; fi
      rm -f "$dir/$name.pid"
    done
  done
}

# Starts PROGRAM in the background, in its own session (a Ctrl-C in the caller's terminal is the caller's to
# handle), logging to DIR/logs/NAME.log.
spawn() { # dir name program args…
  local dir=$1 name=$2 prog=$3
  shift 3
  setsid "$prog" "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 9>&- &
  echo $! >"$dir/$name.pid"
}

wait_until() { # what seconds dir name program command…
  local what=$1 seconds=$2 dir=$3 name=$4 prog=$5 deadline
  shift 5
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! running "$dir" "$name" "$prog"; then
      tail -n 20 "$dir/logs/$name.log" >&2 || true
      die "$name exited while waiting for $what (log: $dir/logs/$name.log)"
    fi
    ((SECONDS < deadline)) || die "$what not reached within ${seconds}s (log: $dir/logs/$name.log)"
    sleep 0.2
  done
}

write_kubeconfig() { # file server ca token user
  cat >"$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: ctrlplane-local
  cluster:
    server: $2
    certificate-authority-data: $(base64 -w0 "$3")
users:
- name: $5
  user:
    token: $4
contexts:
- name: ctrlplane-local
  context: {cluster: ctrlplane-local, user: $5}
current-context: ctrlplane-local
KUBECONFIG
  chmod 600 "$1"
}

cmd_start() {
  local dir=$1 etcd_bin api_port etcd_port peer_port kwok_port server kc t0=$SECONDS
  built_at kubernetes "$K8S_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl &&
    built_at kwok "$KWOK_VERSION" kwok || die "the binaries are not built: run $0 build (scripts/setup.sh does)"
  etcd_bin="$(command -v etcd || echo /usr/bin/etcd)"
  [[ -x $etcd_bin ]] || die "etcd not found: run $0 build"
  mkdir -p "$dir/logs" "$dir/pki"
  dir="$(cd "$dir" && pwd)"
  if running "$dir" apiserver kube-apiserver; then die "a cluster is already running in $dir (stop it first)"; fi
  cmd_stop "$dir" # whatever is left of an earlier start that died half-way

  api_port=${K8S_API_PORT:-$(free_port)}
  etcd_port=${K8S_ETCD_PORT:-$(free_port)}
  peer_port=${K8S_ETCD_PEER_PORT:-$(free_port)}
  kwok_port=${K8S_KWOK_PORT:-$(free_port)}
  server="https://127.0.0.1:$api_port"

  # Keys and tokens are made once per state folder (a restarted dev cluster keeps its objects and credentials).
  local pki=$dir/pki
  if [[ ! -f $pki/tokens.csv ]]; then
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/serving.key" -out "$pki/serving.crt" -days 3650 \
      -subj "/CN=kube-apiserver" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1" 2>/dev/null
    local admin kcm sched
    admin="$(openssl rand -hex 24)" kcm="$(openssl rand -hex 24)" sched="$(openssl rand -hex 24)"
    # token,user,uid,"group,…": admin is cluster-admin through system:masters; the controllers get the users the
    # RBAC bootstrap policy grants their rights to.
    printf '%s\n' "$admin,admin,admin-uid,system:masters" \
      "$kcm,system:kube-controller-manager,kcm-uid" "$sched,system:kube-scheduler,sched-uid" >"$pki/tokens.csv"
    chmod 600 "$pki/tokens.csv" "$pki/sa.key" "$pki/serving.key"
  fi
  local token_admin token_kcm token_sched
  token_admin="$(sed -n 1p "$pki/tokens.csv" | cut -d, -f1)"
  token_kcm="$(sed -n 2p "$pki/tokens.csv" | cut -d, -f1)"
  token_sched="$(sed -n 3p "$pki/tokens.csv" | cut -d, -f1)"
  write_kubeconfig "$dir/admin.kubeconfig" "$server" "$pki/serving.crt" "$token_admin" admin
  write_kubeconfig "$dir/controller-manager.kubeconfig" "$server" "$pki/serving.crt" "$token_kcm" kcm
  write_kubeconfig "$dir/scheduler.kubeconfig" "$server" "$pki/serving.crt" "$token_sched" scheduler
  kc=("$BIN/kubectl" --kubeconfig="$dir/admin.kubeconfig")

  spawn "$dir" etcd "$etcd_bin" --name ctrlplane --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "ctrlplane=http://127.0.0.1:$peer_port" --listen-metrics-urls "" \
    --snapshot-count 10000 --log-level warn
  wait_until "etcd health" 30 "$dir" etcd etcd curl -sf "http://127.0.0.1:$etcd_port/health"

  # --allow-privileged so that Pod Security (not basic validation) is what refuses a privileged pod;
  # --endpoint-reconciler-type=none as the loopback address cannot be the `kubernetes` Service's endpoint.
  spawn "$dir" apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --secure-port="$api_port" --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --tls-cert-file="$pki/serving.crt" --tls-private-key-file="$pki/serving.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --authorization-mode=RBAC --token-auth-file="$pki/tokens.csv" \
    --allow-privileged=true \
    --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,ResourceQuota,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
    --kubelet-preferred-address-types=InternalIP \
    --profiling=false
  wait_until "kube-apiserver /readyz" 60 "$dir" apiserver kube-apiserver \
    curl -sf --cacert "$pki/serving.crt" -H "Authorization: Bearer $token_admin" "$server/readyz"
  # The RBAC bootstrap policy is written just after /readyz.
  wait_until "the RBAC bootstrap policy" 30 "$dir" apiserver kube-apiserver \
    "${kc[@]}" get clusterrolebinding system:kube-controller-manager system:kube-scheduler

  spawn "$dir" controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$dir/controller-manager.kubeconfig" --secure-port=0 --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/serving.crt" \
    --service-cluster-ip-range=10.96.0.0/16 --controllers='*,-nodeipam,-cloud-node-lifecycle' \
    --profiling=false
  spawn "$dir" scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$dir/scheduler.kubeconfig" --secure-port=0 --leader-elect=false --profiling=false

  # kwok plays the node `kwok-node-0` on 127.0.0.1: it moves pods through the Stages in kwok-stages.yaml and
  # serves the kubelet's log endpoint (what the API server proxies pods/log to) from files that Logs objects name.
  "${kc[@]}" apply --server-side -f "$ROOT/scripts/k8s-test-cluster/kwok-logs-crd.yaml" >/dev/null
  wait_until "the Logs CRD" 30 "$dir" apiserver kube-apiserver \
    "${kc[@]}" wait --for=condition=Established crd/logs.kwok.x-k8s.io --timeout=2s
  spawn "$dir" kwok "$BIN/kwok" --kubeconfig="$dir/admin.kubeconfig" \
    --config="$ROOT/scripts/k8s-test-cluster/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --manage-nodes-with-label-selector= --cidr=10.0.0.1/24 --node-ip=127.0.0.1 --node-port="$kwok_port" \
    --server-address="127.0.0.1:$kwok_port" --enable-crds=Logs --node-lease-duration-seconds=40
  "${kc[@]}" apply --server-side -f "$ROOT/scripts/k8s-test-cluster/kwok-node.yaml" >/dev/null
  wait_until "node kwok-node-0 Ready" 60 "$dir" kwok kwok \
    "${kc[@]}" wait --for=condition=Ready node/kwok-node-0 --timeout=2s
  # Pods are refused until their namespace's `default` ServiceAccount exists (the controller-manager makes it).
  wait_until "the default ServiceAccount" 60 "$dir" controller-manager kube-controller-manager \
    "${kc[@]}" -n default get serviceaccount default

  printf 'api_port=%s\netcd_port=%s\nkwok_port=%s\n' "$api_port" "$etcd_port" "$kwok_port" >"$dir/ports"
  say "control plane up on $server in $((SECONDS - t0))s (state and logs: $dir)" >&2
  echo "$dir/admin.kubeconfig"
}

case "${1:-}" in
  build) cmd_build ;;
  start)
    [[ -n ${2:-} ]] || die "usage: $0 start DIR"
    cmd_start "$2"
    ;;
  stop)
    [[ -n ${2:-} ]] || die "usage: $0 stop DIR"
    cmd_stop "$2"
    ;;
  *)
    echo "usage: $0 build | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
