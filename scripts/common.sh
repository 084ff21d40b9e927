# Shared by scripts/run and scripts/test: install what is missing, configure, build.
# Usage: source scripts/common.sh; convbp_build [extra cmake args...]
set -euo pipefail

CONVBP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONVBP_BUILD="${CONVBP_BUILD:-$CONVBP_ROOT/build}"

# Debian packages the build needs. libdnnl-dev is optional for the build (CONVBP_WITH_ONEDNN=AUTO)
# but installed so that the oneDNN implementations are measured; its CMake package needs the
# OpenCL headers and loader (Debian builds oneDNN with the OpenCL GPU runtime), which are only a
# Recommends of libdnnl-dev, hence ocl-icd-opencl-dev. python3 runs the scripts' tests,
# python3-matplotlib draws the plot scripts/run writes beside its report, and python3-scipy
# gives scripts/compare.py its Mann-Whitney U test (all Debian's, run as /usr/bin/python3:
# `python3` on PATH may be another interpreter without them).
CONVBP_PACKAGES=(cmake make g++ git libopenblas-dev libopenblas-openmp-dev nlohmann-json3-dev
                 libbenchmark-dev libgtest-dev libgmock-dev libdnnl-dev ocl-icd-opencl-dev
                 python3 python3-matplotlib python3-scipy)
CONVBP_PYTHON=/usr/bin/python3

convbp_install() {
  local missing=()
  for pkg in "${CONVBP_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

convbp_build() {
  convbp_install
  cmake -S "$CONVBP_ROOT" -B "$CONVBP_BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$CONVBP_BUILD" -j "$(nproc)"
}
