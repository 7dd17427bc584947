#!/usr/bin/env bash
# Installs what gradsweep needs from Debian's packages, only when missing.
# nvcc (CUDA Toolkit 13) is expected under /usr/local/cuda where a CUDA build is wanted;
# without it the CPU backend alone is built.
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# dpkg-dev and file: cpack -G DEB's dependency computation (dpkg-shlibdeps), which tests/cli/install.sh runs.
for p in cmake g++ make git nlohmann-json3-dev catch2 python3 python3-numpy python3-matplotlib dpkg-dev file; do
  have "$p" || need+=("$p")
done
# PyTorch is for the benchmark and the optional `torch` test label; skip with GS_NO_TORCH=1.
if [[ "${GS_NO_TORCH:-0}" != 1 ]] && ! have python3-torch; then need+=(python3-torch); fi
if ((${#need[@]})); then
  echo "install_deps: installing ${need[*]}" >&2
  sudo=(); [[ $(id -u) == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
