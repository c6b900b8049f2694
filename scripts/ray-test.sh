#!/usr/bin/env bash
# Run the Ray RLlib integration tests (tests_ray/) in their own virtual env.
#
# Ray pins gymnasium==1.2.2, so these tests cannot share the main .venv (gymnasium 1.4).
# The venv .venv-ray is made once at the repo root and reused while pyproject.toml and this
# script are unchanged; delete it (or pass --rebuild) to start over.
#
#   scripts/ray-test.sh                # build .venv-ray if needed, then run tests_ray
#   scripts/ray-test.sh -k check_env   # extra arguments go to pytest
#   scripts/ray-test.sh --rebuild      # remove .venv-ray first
#
# Needs only python3.11 on PATH (override with PYTHON=/path/to/python3.11).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${RAY_VENV:-.venv-ray}"
PY="$VENV/bin/python"
STAMP="$VENV/.installed"

if [[ "${1:-}" == "--rebuild" ]]; then
    shift
    rm -rf "$VENV"
fi

# The stamp holds a hash of what the install depends on; any change reinstalls.
want="$(cat pyproject.toml scripts/ray-test.sh | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"

if [[ ! -x "$PY" || "$want" != "$have" ]]; then
    echo ">> setting up $VENV"
    [[ -x "$PY" ]] || "$PYTHON" -m venv "$VENV"
    rm -f "$STAMP"
    "$PY" -m pip install --quiet --upgrade pip
    # torch first and pinned: this is the CPU wheel; an unpinned torch would pull a CUDA build.
    "$PY" -m pip install --quiet torch==2.13.0
    "$PY" -m pip install --quiet -e ".[ray,test]"
    echo "$want" > "$STAMP"
fi

export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
exec "$PY" -m pytest tests_ray -q "$@"
