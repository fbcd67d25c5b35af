#!/bin/sh
# Image build only: ONNX Runtime's shared libraries from a PyPI wheel into DEST.
# Usage: fetch-onnxruntime.sh onnxruntime|onnxruntime-gpu VERSION DEST
set -eu
package=$1 version=$2 dest=$3
pip download --quiet --no-deps --only-binary=:all: -d /tmp/wheels "$package==$version"
python - "$dest" /tmp/wheels/*.whl <<'PY'
import pathlib, sys, zipfile
dest = pathlib.Path(sys.argv[1])
dest.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(sys.argv[2]) as wheel:
    for name in wheel.namelist():
        if "/capi/libonnxruntime" in name:
            (dest / pathlib.Path(name).name).write_bytes(wheel.read(name))
PY
rm -rf /tmp/wheels
ls "$dest"
