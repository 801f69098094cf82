#!/usr/bin/env bash
# Build a minimal Debian base image with python3 offline-style: debootstrap from the
# mirror apt already uses, then `docker import`. Used when no registry can be reached.
# Usage: images/make-base.sh IMAGE_NAME
set -euo pipefail
name=${1:?usage: make-base.sh IMAGE_NAME}
suite=${SUITE:-bookworm}

if docker image inspect "$name" >/dev/null 2>&1; then
  echo "base image $name already present"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: building $name with debootstrap needs root; run as root or set BASE_IMAGE to an image you can pull" >&2
  exit 2
fi
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null

# The mirror comes from apt's own sources (deb822 "URIs:" or one-line "deb URL suite").
mirror=$( { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
            grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'; } \
          | grep -v security | head -n1) || true
[ -n "$mirror" ] || { echo "error: no Debian mirror found in /etc/apt/sources*" >&2; exit 2; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "debootstrap $suite from apt's mirror into $root (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["python3"]' - "$name" >/dev/null
rm -f "$root.log"
echo "built base image $name"
