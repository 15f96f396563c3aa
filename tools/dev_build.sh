#!/usr/bin/env bash
# Developer build: compiles the extension into build/dev and links it into python/npuemu so that
# `PYTHONPATH=python python -m pytest` tests the working tree (no install, one build dir per checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/dev/build.ninja ]; then
  cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
    -DPython_EXECUTABLE="$(command -v python3)" >/dev/null
fi
ninja -C build/dev
so=$(ls build/dev/_core*.so)
ln -sf "../../$so" "python/npuemu/$(basename "$so")"
