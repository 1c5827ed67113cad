#!/usr/bin/env bash
# Run the test suite once at the LOWEST versions pyproject.toml accepts (numpy, torch, and the other
# lower bounds), in a throw-away venv, so the declared ranges are measured rather than hoped for.
# Slow (downloads torch 2.3 from PyPI); not part of CI. Writes benchmarks/results/lowest-versions.txt.
#
# Usage: benchmarks/lowest_versions.sh [VENV_DIR]      (default /tmp/mitodet-lowest)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-/tmp/mitodet-lowest}
OUT=benchmarks/results/lowest-versions.txt
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# the lower bounds of [project.dependencies] (torch's own CUDA libraries come with the PyPI wheel)
"$VENV/bin/python" -m pip install -q "torch==2.3.1" "numpy==1.26.4" "scipy==1.11.4" "scikit-image==0.22.0" \
    "tifffile==2024.1.30" "imagecodecs==2024.6.1" "pillow==10.1.0" "typer==0.16.0" "rich==13.0.0" \
    "pydantic==2.5.0" "pyyaml==6.0.1" "matplotlib==3.8.0" "openslide-python==1.4.0" "openslide-bin==4.0.0.2" \
    "tiffslide==2.3.0" "onnx==1.15.0" "onnxruntime==1.17.0" "pytest>=8" "pytest-xdist>=3.5"
"$VENV/bin/python" -m pip install -q --no-deps -e .
{
  echo "# mitodet test suite at the lowest supported versions ($(date -u +%Y-%m-%d))"
  "$VENV/bin/python" -c "import numpy, torch, scipy, skimage, PIL; print('numpy', numpy.__version__, '| torch', torch.__version__, '| scipy', scipy.__version__, '| scikit-image', skimage.__version__, '| pillow', PIL.__version__)"
  "$VENV/bin/python" -m pytest -q -n 2 -p no:cacheprovider 2>&1 | tail -15
} | tee "$OUT"
