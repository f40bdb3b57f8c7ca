#!/usr/bin/env bash
# System packages vam needs beyond Python wheels: ffprobe (Debian's ffmpeg package) and, for the
# speech tests, espeak-ng.
# ffmpeg itself (with libvmaf) comes from the imageio-ffmpeg wheel.
set -euo pipefail
need=()
command -v ffprobe >/dev/null || need+=(ffmpeg)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
