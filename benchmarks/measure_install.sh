#!/usr/bin/env bash
# Measure a fresh install of risc_tf as the README does it: time, venv size, and whether
# torch came along. Usage: bash benchmarks/measure_install.sh [VENV_DIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-/tmp/risc_tf_install_check}"
rm -rf "$venv"
python3 -m venv "$venv"
start=$(date +%s)
"$venv/bin/pip" install -q --no-cache-dir "$repo" 2>&1 | grep -v "is ignored" || true
"$venv/bin/pip" install -q --no-cache-dir --no-deps medmnist==3.0.2 2>&1 | grep -v "is ignored" || true
end=$(date +%s)
echo "python: $("$venv/bin/python" --version)"
echo "install seconds (no pip cache): $((end - start))"
echo "venv size MB: $(du -sm "$venv" | cut -f1)"
echo "torch installed: $("$venv/bin/pip" list 2>/dev/null | grep -ci '^torch ' || true)"
"$venv/bin/python" - <<'PY'
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import risc_tf
risc_tf.dataset_info("organamnist")
print("import risc_tf + medmnist metadata OK; torch imported:", "torch" in sys.modules)
PY
