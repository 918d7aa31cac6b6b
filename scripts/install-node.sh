#!/usr/bin/env bash
# The Node.js that ctrlplane runs on (package.json `engines`). Sourced by scripts/setup.sh, run by scripts/node when
# setup has not run yet. Uses the machine's node when it is recent enough; otherwise installs Node 24 LTS from the
# npm registry's node-linux-<arch> package (the official binary inside a registry package) into .tools/. Either way
# .tools/node/bin/node points at the chosen binary and .tools/node/bin goes first on PATH, so npm (whose launcher
# runs `env node`) and everything it starts, `npm ci` included, run on it.

CTRLPLANE_NODE_VERSION=24.22.3 # exact pin of the Node.js installed when the machine's is too old
CTRLPLANE_NODE_MIN=22.19.0     # package.json engines: undici 8 (client-node 2) needs 22.19, MikroORM 7 22.17

ctrlplane_node_setup() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local link_dir="$root/.tools/node/bin"
  local chosen="" candidate version

  # The machine's node: the first on PATH that is not our own link.
  while IFS= read -r candidate; do
    [[ $candidate == "$link_dir/node" ]] && continue
    version="$("$candidate" -p 'process.versions.node' 2>/dev/null)" || continue
    if ctrlplane_node_at_least "$version" "$CTRLPLANE_NODE_MIN"; then chosen="$(readlink -f "$candidate")"; fi
    break
  done < <(type -ap node 2>/dev/null || true)

  if [[ -z $chosen ]]; then
    local arch
    case "$(uname -m)" in
      x86_64 | amd64) arch=x64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *)
        printf 'node: ERROR: no Node.js >= %s on PATH and no node-linux package for %s\n' "$CTRLPLANE_NODE_MIN" "$(uname -m)" >&2
        return 1
        ;;
    esac
    local dir="$root/.tools/node-$CTRLPLANE_NODE_VERSION-linux-$arch"
    chosen="$dir/node_modules/node-linux-$arch/bin/node"
    mkdir -p "$root/.tools"
    # One install at a time (fd 8; setup.sh's own lock is fd 9).
    if command -v flock >/dev/null 2>&1; then exec 8>"$root/.tools/node-install.lock" && flock -w 600 8; fi
    if [[ "$("$chosen" -v 2>/dev/null || true)" != "v$CTRLPLANE_NODE_VERSION" ]]; then
      command -v npm >/dev/null 2>&1 || {
        printf 'node: ERROR: Node.js >= %s is needed and npm, which would install it, is missing\n' "$CTRLPLANE_NODE_MIN" >&2
        return 1
      }
      printf 'node: installing Node.js %s (npm package node-linux-%s) into %s\n' "$CTRLPLANE_NODE_VERSION" "$arch" "${dir#"$root"/}"
      local staging="$dir.partial.$$"
      rm -rf "$staging" && mkdir -p "$staging"
      if ! npm install --prefix "$staging" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
        "node-linux-$arch@$CTRLPLANE_NODE_VERSION" </dev/null 9>&- >&2; then
        rm -rf "$staging"
        exec 8>&-
        printf 'node: ERROR: npm install node-linux-%s@%s failed\n' "$arch" "$CTRLPLANE_NODE_VERSION" >&2
        return 1
      fi
      { rm -rf "$dir" && mv "$staging" "$dir"; } || {
        exec 8>&-
        return 1
      }
    fi
    exec 8>&-
  fi

  mkdir -p "$link_dir" || return 1
  if [[ "$(readlink "$link_dir/node" 2>/dev/null || true)" != "$chosen" ]]; then
    { ln -sfn "$chosen" "$link_dir/node.new.$$" && mv -T "$link_dir/node.new.$$" "$link_dir/node"; } || return 1
  fi
  case ":$PATH:" in
    *":$link_dir:"*) ;;
    *) export PATH="$link_dir:$PATH" ;;
  esac
  local running
  running="$("$link_dir/node" -v 2>/dev/null)" || {
    printf 'node: ERROR: %s does not run\n' "$chosen" >&2
    return 1
  }
  printf 'node: %s (%s)\n' "$running" "$chosen"
}

# True when dotted version $1 >= $2.
ctrlplane_node_at_least() {
  local IFS=.
  local -a have=($1) want=($2)
  local i
  for i in 0 1 2; do
    ((10#${have[i]:-0} > 10#${want[i]:-0})) && return 0
    ((10#${have[i]:-0} < 10#${want[i]:-0})) && return 1
  done
  return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  ctrlplane_node_setup
else
  ctrlplane_node_setup || return 1
fi
