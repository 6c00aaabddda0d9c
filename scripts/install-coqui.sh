#!/usr/bin/env bash
# Install the optional Coqui TTS engine (TTS_ENGINE=coqui) into .venv, CPU only. Idempotent.
#
# coqui-tts 0.28 imports torchaudio (undeclared) and torchcodec. PyPI's torchaudio for x86_64
# is a CUDA build whose compiled extension needs libc10_cuda.so, absent beside the CPU torch;
# without that extension torchaudio imports in pure Python (its own fallback for packaged
# deployments), and VITS synthesis uses none of the compiled parts. So: CPU torch, then
# torchaudio without dependencies, minus its compiled libraries. ~1.7 GB, 2-3 min.
# The alternative that needs no such step (torch 2.9.1 + torchaudio 2.9.1) is ~7 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if "$py" -c 'import TTS.api' 2>/dev/null; then
  exit 0
fi
echo "installing the optional Coqui TTS engine into .venv (a few minutes)"
"$py" -m pip install -q torch==2.13.0 coqui-tts==0.28.0 torchcodec==0.17.0 six
"$py" -m pip install -q --no-deps torchaudio==2.11.0
lib=$("$py" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("torchaudio").origin).parent / "lib")')
rm -f "$lib"/*.so
"$py" -c 'import TTS.api' && echo "Coqui TTS engine installed"
