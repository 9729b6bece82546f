#!/bin/sh
# Builds the wheel and the sdist, installs the wheel (never editable) and runs one job:
# demo, test, bench. Each environment installs its dependencies once, then the fresh wheel.
#   .venv         torch 2.13.0 CPU, the wheel with [validate,test]: the demo and the suite
#   .venv-light   the wheel alone (no torch, onnxruntime or onnxscript): the light install
#   .venv-models  torch 2.14.1 + torchvision 0.29.1, timm: the public model families
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
BIN="$VENV/bin"
DIST=build/dist
MAIN_TORCH="torch==2.13.0"
MODELS_TORCH="torch==2.14.1 torchvision==0.29.1"

fail() {
    echo "dev.sh: $*" >&2
    exit 1
}

# make_env DIR STAMP-KEY PIP-ARGS...: a venv whose dependencies are installed once per change
# of pyproject.toml (or of the key, which names the pinned torch).
make_env() {
    dir="$1"
    key="$2"
    shift 2
    [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir" || return 1
    stamp="$dir/.exportcheck-deps"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$(cat "$stamp")" != "$key" ]; then
        "$dir/bin/python" -m pip install --quiet --upgrade pip || return 1
        if [ "$#" -gt 0 ]; then
            # A bare torch requirement would pull a multi-GB CUDA build on CPU-only Linux.
            "$dir/bin/python" -m pip install --quiet "$@" || return 1
        fi
        echo "$key" >"$stamp"
    fi
}

# install_wheel DIR EXTRAS: the wheel just built, its dependencies once, exportcheck every time.
install_wheel() {
    wheel=$(ls "$DIST"/exportcheck-*.whl)
    spec="$wheel${2:+[$2]}"
    if [ ! -f "$1/.exportcheck-wheel-deps" ] || [ pyproject.toml -nt "$1/.exportcheck-wheel-deps" ]; then
        "$1/bin/python" -m pip install --quiet "$spec"
        touch "$1/.exportcheck-wheel-deps"
    fi
    "$1/bin/python" -m pip install --quiet --no-deps --force-reinstall "$wheel"
}

build_dist() {
    make_env "$VENV" "$MAIN_TORCH" "$MAIN_TORCH" "setuptools>=77" wheel build
    rm -rf "$DIST" build/lib build/bdist.*
    # From the sdist, as a user's `pip install` of a release would: a file the sdist misses
    # is missing from the wheel too.
    env -u PYTHONDONTWRITEBYTECODE "$BIN/python" -m build --no-isolation --sdist --wheel --outdir "$DIST" . >build/dist.log 2>&1 ||
        { cat build/dist.log >&2; fail "building the wheel and the sdist failed"; }
    if grep -i "warning" build/dist.log >&2; then
        fail "the build printed warnings (build/dist.log)"
    fi
}

setup() {
    mkdir -p build
    build_dist
    install_wheel "$VENV" "validate,test"
}

setup_light() {
    make_env .venv-light "light"
    install_wheel .venv-light ""
    if .venv-light/bin/python -c "import torch" 2>/dev/null; then
        fail ".venv-light holds torch: the light install must not"
    fi
}

setup_models() {
    # shellcheck disable=SC2086
    make_env .venv-models "$MODELS_TORCH timm" $MODELS_TORCH "timm>=1.0" ||
        fail "the model-family environment (torch 2.14.1, torchvision 0.29.1, timm) cannot be built here"
    install_wheel .venv-models "validate,test"
    .venv-models/bin/python -c "import torchvision, timm" ||
        fail "torchvision or timm does not import in .venv-models"
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
        setup_light
        "$BIN/ruff" check .
        "$BIN/ruff" format --check .
        start=$(date +%s)
        EXPORTCHECK_DIST="$DIST" EXPORTCHECK_LIGHT_PYTHON=.venv-light/bin/python \
            "$BIN/python" -m pytest -q -p no:cacheprovider -n auto --dist worksteal \
            -m "not model_family"
        echo "dev.sh: torch 2.13.0 suite: $(($(date +%s) - start)) s"
        setup_models
        start=$(date +%s)
        EXPORTCHECK_REQUIRE_MODEL_FAMILIES=1 \
            .venv-models/bin/python -m pytest -q -p no:cacheprovider -n auto --dist worksteal \
            -m model_family
        echo "dev.sh: torch 2.14.1 model families: $(($(date +%s) - start)) s"
        ;;
    bench)
        setup
        "$BIN/python" -m pip install --quiet -r bench/requirements.txt
        shift
        "$BIN/python" bench/run.py "$@"
        "$BIN/python" bench/localize.py
        ;;
    *)
        echo "usage: sh scripts/dev.sh [setup|demo|test|bench]" >&2
        exit 2
        ;;
esac
