#!/usr/bin/env bash
# Prepare, on a machine with the internet (or the fetch tool's mirrors), what bench/gpu_check.py
# needs on the GPU machine, which has no registry and lacks pydantic, SQLAlchemy, Alembic and openai.
# Fills three folders that .gitignore ignores and the device call carries:
#   .whl/   wheels for CPython 3.12 on x86-64 Linux: this project's dependencies the image lacks,
#           at the versions the tests here run with, with their own dependencies;
#   .data/  the shared JPEG pack of CIFAR-10 and its decoder;
#   .refs/  airbench94_muon.py and cifar10_speedrun.py at the pinned commits (never committed).
# Run it from the root of the checkout that the device call sends. docs/BENCHMARKS.md has the call.
set -euo pipefail

SHARED=${SHARED:-../shared/data}
MIRRORS=${MIRRORS:-/work/.mirror}
AIRBENCH_COMMIT=f1c599c4af24aca803e3e65a6a7e52a502e09d0e
SPEEDRUN_COMMIT=5cd49b1e586f473b535cdeee69fe8ad5b6e9618b
# Versions as installed where the tests run; pydantic-core is pinned by pydantic itself.
PACKAGES=(pydantic==2.13.4 sqlalchemy==2.1.9 alembic==1.20.1 openai==3.57.0 typer==0.29.2 rich)

cd "$(git rev-parse --show-toplevel)"

mkdir -p .data .refs .whl
cp "$SHARED/cifar10_jpeg75.npz" "$SHARED/decode_cifar10_jpeg75.py" .data/

reference() {  # reference NAME OWNER+REPO COMMIT URL
    local name=$1 mirror="$MIRRORS/$2/repo" commit=$3 url=$4
    if git --git-dir="$mirror" cat-file -e "$commit" 2>/dev/null; then
        git --git-dir="$mirror" show "$commit:$name" > ".refs/$name"
    else
        curl -fsSL -o ".refs/$name" "$url"
    fi
}
reference airbench94_muon.py KellerJordan+cifar10-airbench "$AIRBENCH_COMMIT" \
    "https://raw.githubusercontent.com/KellerJordan/cifar10-airbench/$AIRBENCH_COMMIT/airbench94_muon.py"
reference cifar10_speedrun.py hiverge+cifar10-speedrun "$SPEEDRUN_COMMIT" \
    "https://raw.githubusercontent.com/hiverge/cifar10-speedrun/$SPEEDRUN_COMMIT/cifar10_speedrun.py"

rm -f .whl/*.whl
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -d .whl "${PACKAGES[@]}"

du -sh .whl .data .refs
ls .whl
