#!/bin/sh
# Every CUDA check in one command, for a machine with a GPU and torch/onnx/onnxruntime already
# installed (CPU-only onnxruntime is fine: ONNX Runtime's CUDA comparison is then reported as
# skipped). Writes reports to ${OUT:-build/cuda}. Takes about two minutes.
set -eu
cd "$(dirname "$0")/.."
OUT="${OUT:-build/cuda}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
# The package from this checkout's src/, without installing it: a GPU machine may lack the
# setuptools (>= 77) the build needs, and has no registry to fetch it from.
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PYEOF'
import torch, onnxruntime as ort
print("torch", torch.__version__, "cuda", torch.version.cuda, "device",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
print("onnxruntime", ort.__version__, ort.get_available_providers())
PYEOF
status=0
"$PY" -m pytest -q -p no:cacheprovider -m cuda tests/comparison/test_cuda.py 2>&1 | tee "$OUT/pytest-cuda.txt" || status=1
rc=0
"$PY" -m exportcheck validate sample_models --device all --format json --output "$OUT/validate-all.json" \
    --output "text=$OUT/validate-all.txt" || rc=$?
"$PY" sample_models/check_demo.py "$OUT/validate-all.json" "$rc" || status=1
"$PY" - "$OUT/validate-all.json" <<'PYEOF'
import json, sys
report = json.load(open(sys.argv[1]))
cuda = [c for c in report["comparisons"] if c["device"] == "cuda"]
worst = max((c["metrics"]["max_abs"] or 0) for c in cuda if c["passed"]) if cuda else None
print(f"cuda comparisons: {len(cuda)}, failed: {sum(not c['passed'] for c in cuda)}, worst passing max_abs: {worst}")
for s in report["skipped"]:
    if s["device"] == "cuda":
        print("skipped:", s["subject"].split("/")[-1], s["step"], "-", s["reason"])
        break
PYEOF
"$PY" - <<'PYEOF'
# TF32 effect on a conv+BN stack: the reason the CUDA reference runs with TF32 off.
import sys
sys.path.insert(0, "sample_models")
import torch
from exportcheck.targets.python_targets import build_target
model, inputs = (lambda t: (t.model.eval(), t.inputs))(build_target("sample_models/cnn.py:build"))
with torch.inference_mode():
    cpu = model(*inputs)
    cuda_model = model.to("cuda")
    for allowed in (True, False):
        torch.backends.cudnn.allow_tf32 = allowed
        torch.backends.cuda.matmul.allow_tf32 = allowed
        out = cuda_model(inputs[0].cuda()).cpu()
        print(f"cnn cuda vs cpu, tf32={'on ' if allowed else 'off'}: max abs {float((out - cpu).abs().max()):.3g}")
PYEOF
exit $status
