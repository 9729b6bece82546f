#!/bin/sh
# Sets up .venv (torch 2.13.0 CPU first, then the project) and runs one job: demo, test, bench.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
BIN="$VENV/bin"

setup() {
    if [ ! -x "$BIN/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    stamp="$VENV/.exportcheck-installed"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        "$BIN/python" -m pip install --quiet --upgrade pip setuptools wheel
        # A bare torch requirement would pull a multi-GB CUDA build on CPU-only Linux.
        "$BIN/python" -m pip install --quiet "torch==2.13.0"
        "$BIN/python" -m pip install --quiet -e ".[test]"
        touch "$stamp"
    fi
}

job="${1:-test}"
case "$job" in
    setup)
        setup
        ;;
    demo)
        setup
        mkdir -p build/demo
        status=0
        "$BIN/exportcheck" validate sample_models --device cpu \
            --output json=build/demo/report.json --output junit=build/demo/report.junit.xml \
            --output sarif=build/demo/report.sarif || status=$?
        "$BIN/python" sample_models/check_demo.py build/demo/report.json "$status"
        ;;
    test)
        setup
        "$BIN/ruff" check .
        "$BIN/ruff" format --check .
        "$BIN/python" -m pytest -q -p no:cacheprovider -n auto --dist worksteal
        ;;
    bench)
        setup
        "$BIN/python" -m pip install --quiet -r bench/requirements.txt
        shift
        "$BIN/python" bench/run.py "$@"
        ;;
    *)
        echo "usage: sh scripts/dev.sh [setup|demo|test|bench]" >&2
        exit 2
        ;;
esac
