#!/usr/bin/env bash
# Installs what the tutor and its tests need into the current Python environment, idempotently: only what is
# missing, and never an upgrade of a system package. Says what it does; `SETUP_QUIET=1` silences it.
#
# 1. torch/torchvision, pinned (2.14.1 / 0.29.1). On a machine without a GPU it first tries the CPU build from
#    PyTorch's CPU index (~0.2 GB instead of ~4.5 GB of CUDA wheels) and falls back to PyPI's build when that
#    index is unreachable or the CPU build is refused by a pip constraint (this workplace caps torch<=2.14.1,
#    which excludes 2.14.1+cpu, and cannot reach download.pytorch.org: it installs PyPI's CUDA build).
# 2. the project, editable, with its `test` extra.
# 3. Debian packages (root only; otherwise it prints the command): Chromium for the browser test and a CJK font
#    so the app's Chinese theorem aliases render. Waits (bounded) for another apt/dpkg to finish, installs
#    without recommends, and refuses anything that would upgrade an installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
APT_LOCK_WAIT=${APT_LOCK_WAIT:-600}   # seconds to wait for another apt/dpkg process before giving up
pip_quiet=(-q --disable-pip-version-check --no-input)

say() { [ "${SETUP_QUIET:-0}" = 1 ] || echo "setup: $*"; }
warn() { echo "setup: $*" >&2; }

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# --- 1. torch -------------------------------------------------------------------------------------------------
TORCH=2.14.1 TORCHVISION=0.29.1
if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
  say "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed, kept"
else
  installed=0
  if ! has_gpu; then
    say "no GPU: trying the CPU build torch==$TORCH+cpu from https://download.pytorch.org/whl/cpu"
    if "$PY" -m pip install "${pip_quiet[@]}" --retries 0 --timeout 15 --index-url https://download.pytorch.org/whl/cpu \
        "torch==$TORCH+cpu" "torchvision==$TORCHVISION+cpu" 2>/dev/null; then
      installed=1
    else
      say "CPU build not available here (index unreachable or excluded by a pip constraint); using PyPI's build"
    fi
  fi
  if [ "$installed" = 0 ]; then
    say "installing torch==$TORCH torchvision==$TORCHVISION (PyPI's Linux build bundles the CUDA libraries)"
    "$PY" -m pip install "${pip_quiet[@]}" "torch==$TORCH" "torchvision==$TORCHVISION"
  fi
fi

# --- 2. the project ---------------------------------------------------------------------------------------------
say "installing the project (editable) with its test extra"
"$PY" -m pip install "${pip_quiet[@]}" -e ".[test]"

# --- 3. Debian packages -----------------------------------------------------------------------------------------
# The browser test drives Debian's Chromium through Playwright (Playwright's own browser download cannot run on
# machines without internet, so we never call `playwright install`). The smallest CJK font that covers the
# aliases: fonts-wqy-microhei (5 MB installed, no dependencies; fonts-noto-cjk is 91 MB).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh family 2>/dev/null)" ]; then
  missing+=(fonts-wqy-microhei)
fi

apt_lock_holder() {
  # Prints the pid holding apt's or dpkg's lock (fcntl locks, asked with F_GETLK: nothing is taken), or nothing.
  "$PY" - <<'EOF'
import fcntl, os, struct
for path in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
             "/var/cache/apt/archives/lock"):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        continue
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    finally:
        os.close(fd)
    kind, _, _, _, pid = struct.unpack("hhqqi", answer)
    if kind != fcntl.F_UNLCK:
        print(pid)
        break
EOF
}

wait_for_apt() {
  local waited=0
  local holder
  while holder=$(apt_lock_holder) && [ -n "$holder" ]; do
    if [ "$waited" -ge "$APT_LOCK_WAIT" ]; then
      warn "another apt/dpkg process still holds its lock after ${APT_LOCK_WAIT}s; rerun setup when it is done"
      return 1
    fi
    if [ "$waited" = 0 ]; then
      say "waiting up to ${APT_LOCK_WAIT}s for another apt/dpkg (pid $holder: $(tr '\0\n' '  ' </proc/"$holder"/cmdline 2>/dev/null | cut -c1-100 || true))"
    fi
    sleep 5
    waited=$((waited + 5))
  done
}

apt_install() {
  # --no-upgrade keeps installed packages as they are; a dependency that would need an upgrade is refused below.
  local apt=(apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_WAIT" -y -q --no-install-recommends --no-upgrade)
  wait_for_apt || return 1
  local unknown=()
  for package in "$@"; do
    apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [^(]' || unknown+=("$package")
  done
  if [ "${#unknown[@]}" -gt 0 ]; then
    say "apt-get update (the package lists lack ${unknown[*]})"
    apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_WAIT" update -qq || return 1
  fi
  local plan upgrades
  plan=$(DEBIAN_FRONTEND=noninteractive "${apt[@]}" -s install "$@") || return 1
  upgrades=$(echo "$plan" | awk '$1 == "Inst" && $3 ~ /^\[/ {print $2}' | tr '\n' ' ')
  if [ -n "$upgrades" ]; then
    warn "installing $* would upgrade installed packages ($upgrades); not done. Install them yourself if you"
    warn "accept that: apt-get install --no-install-recommends $*"
    return 1
  fi
  say "apt-get install $* ($(echo "$plan" | grep -c '^Inst ') new packages, no upgrades)"
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "$@" >/dev/null || return 1
}

if [ "${#missing[@]}" = 0 ]; then
  say "chromium and a CJK font already installed"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt_install "${missing[@]}" || warn "continuing without ${missing[*]}: the browser test will skip"
else
  warn "missing ${missing[*]}; install with: sudo apt-get install --no-install-recommends ${missing[*]}"
  warn "(without chromium the browser test skips; without a CJK font Chinese aliases show as boxes)"
fi
# The app's first start would otherwise build the theorem bank and embed its theorems itself (~10 s before the
# first answer); its files go where the app keeps them ($THEOREM_TUTOR_CACHE, else ~/.cache/theorem-tutor).
say "building the theorem bank and its embeddings (the app's cache, so that its first start is a fast one)"
"$PY" -c "from theorem_bank import open_bank; open_bank().dense_index()" \
  || warn "the theorem bank was not built now; the app builds it at its first start"
say "done"
