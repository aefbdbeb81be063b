#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine: a software Vulkan adapter (Mesa lavapipe) and
# GL (llvmpipe) when the machine has none, a font for plots, then the data sets (scripts/setup-data.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
ldconfig -p 2>/dev/null | grep -q libEGL_mesa.so || need+=(libegl-mesa0 libgl1-mesa-dri)
# Text in training plots (crates/models/src/report.rs); plots are drawn without text if it is absent.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
scripts/setup-data.sh
