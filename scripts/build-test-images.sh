#!/usr/bin/env bash
# Builds the local test image ctrlplane-test/busybox:1 when it is missing. Nothing can be pulled on these
# machines, so the image is a `docker import` of a tiny root filesystem: the static busybox (package
# busybox-static) in /bin with one link per applet, plus /tmp and /www (`busybox httpd -f -h /www` serves HTTP,
# `sleep` idles). Bump the tag when the contents change.
set -euo pipefail

IMAGE=ctrlplane-test/busybox:1
BUSYBOX=/bin/busybox

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "setup: image $IMAGE present"
  exit 0
fi
docker info >/dev/null 2>&1 || {
  echo "setup: ERROR: the docker engine does not answer (run scripts/setup.sh)" >&2
  exit 1
}
if [[ ! -x $BUSYBOX ]] || ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "setup: ERROR: $BUSYBOX is missing or not static: apt-get install -y busybox-static" >&2
  exit 1
fi

echo "setup: building image $IMAGE"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/tmp" "$dir/www"
chmod 1777 "$dir/tmp"
cp "$BUSYBOX" "$dir/bin/busybox"
chmod 0755 "$dir/bin/busybox"
while IFS= read -r applet; do
  [[ -n $applet && $applet != busybox && $applet != */* ]] || continue
  ln -sf busybox "$dir/bin/$applet"
done < <("$BUSYBOX" --list)

tar -C "$dir" --numeric-owner --owner=0 --group=0 -c . |
  docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
echo "setup: built image $IMAGE"
