#!/usr/bin/env bash
# Fetches the ONNX Runtime CPU library from the PyPI wheel onnxruntime==1.31.1 (MIT) into
# .cache/onnxruntime/. Does nothing when it is already there. Nothing is downloaded at build time:
# the binaries load this file at run time (ORT_DYLIB_PATH overrides where).
set -euo pipefail

VERSION=1.31.1
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/onnxruntime"
lib="$dest/libonnxruntime.so.$VERSION"

if [ -s "$lib" ]; then
  exit 0
fi

case "$(uname -m)" in
  x86_64) platform=manylinux_2_28_x86_64 ;;
  aarch64) platform=manylinux_2_28_aarch64 ;;
  *) echo "setup-onnxruntime: no onnxruntime wheel for $(uname -m)" >&2; exit 1 ;;
esac

python=${PYTHON:-python3}
wheels="$root/.cache/wheels"
mkdir -p "$dest" "$wheels"
wheel=$(ls "$wheels"/onnxruntime-$VERSION-*"$platform"*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  echo "setup-onnxruntime: downloading onnxruntime==$VERSION ($platform) from PyPI" >&2
  "$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --platform "$platform" \
    -d "$wheels" "onnxruntime==$VERSION"
  wheel=$(ls "$wheels"/onnxruntime-$VERSION-*"$platform"*.whl | head -n 1)
fi

# The library inside the wheel does not depend on Python; take it and its licence.
"$python" - "$wheel" "$dest" "$VERSION" <<'PY'
import sys, zipfile, pathlib
wheel, dest, version = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    lib = f"onnxruntime/capi/libonnxruntime.so.{version}"
    if lib not in names:
        sys.exit(f"setup-onnxruntime: {lib} is not in {wheel}")
    tmp = dest / (pathlib.Path(lib).name + ".part")
    tmp.write_bytes(z.read(lib))
    tmp.rename(dest / pathlib.Path(lib).name)
    for name in ("onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt"):
        if name in names:
            (dest / pathlib.Path(name).name).write_bytes(z.read(name))
PY
echo "setup-onnxruntime: ONNX Runtime $VERSION ready at $lib" >&2
