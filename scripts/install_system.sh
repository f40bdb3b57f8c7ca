#!/usr/bin/env bash
# System packages vam needs beyond Python wheels: ffprobe (Debian's ffmpeg package) and, for the
# speech tests, espeak-ng; chromium for the browser tests, nginx for the delivery benchmark.
# ffmpeg itself (with libvmaf) comes from the imageio-ffmpeg wheel.
set -euo pipefail
need=()
command -v ffprobe >/dev/null || need+=(ffmpeg)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)  # browser tests of the player/upload pages
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)  # bench/bench_delivery.py baseline
command -v docker-compose >/dev/null || need+=(docker-compose)  # validates docker-compose.yaml (no engine needed)
command -v redis-server >/dev/null || need+=(redis-server)  # the Celery broker (VAM_EXECUTOR=celery, its test)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
