#!/usr/bin/env bash
# Download here, into .whl/, the wheels bench/gpu.sh installs on a fresh GPU machine (which has no network).
# That machine has Python 3.12 with torch (CUDA), torchvision, timm, accelerate, tifffile, scikit-image, opencv,
# pandas, matplotlib, scipy... (see /work/.library/device/KINDS.md) but not fastai, its fast* helpers, plum-dispatch,
# nbdev, execnb (and IPython, which execnb needs), zarr, imagecodecs (JPEG tiles in TIFF). Versions are those of the
# kit's own environment; --no-deps: every package needed is named here, one version each (not IPython's optional
# jedi: the wheels and the checkout must stay within the device tool's 64 MiB).
#     bash bench/gpu_wheels.sh        # then carry .whl (.whl/ is in .gitignore)
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qxF '.whl/' .gitignore || echo '.whl/' >> .gitignore  # the wheels travel with carry, never in git
mkdir -p .whl
PKGS=(fastai==2.8.7 fastcore==1.14.5 fasttransform==0.0.2 fastprogress==1.1.6 fastdownload==0.0.8
      plum-dispatch==2.9.0 beartype==0.23.1
      nbdev==2.4.14 execnb==0.1.18 fastgit==0.1.4 ghapi==2.0.3 fastspec==0.1.0 astunparse==1.6.3 watchdog==7.1.1
      asttokens==3.0.2 ipython==9.18.1 ipython-pygments-lexers==1.1.1
      matplotlib-inline==0.2.2 pexpect==4.9.0 ptyprocess==0.7.0 prompt-toolkit==3.0.53 wcwidth==0.9.4
      stack-data==0.6.3 executing==2.3.0 pure-eval==0.2.4 traitlets==5.16.1
      zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0 imagecodecs==2026.3.6)
PLAT=()
for n in 28 27 17; do PLAT+=(--platform "manylinux_2_${n}_x86_64"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLAT[@]}" --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "${PKGS[@]}"
rm -f .whl/jedi-*.whl .whl/parso-*.whl  # left from an older list
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
wheels=$(du -cb .whl/*.whl | tail -1 | cut -f1)
echo "$(ls .whl/*.whl | wc -l) wheels, $((wheels >> 20)) MiB; with the checkout $(((tree + wheels) >> 20)) MiB (limit 64)"
(( tree + wheels < 64 << 20 )) || { echo "too large for the device tool"; exit 1; }
