#!/usr/bin/env bash
# Build llama-cpp-python from source for this CPU family, cache the wheel, install it, and prove
# it generates tokens from the shipped model. Env: PIP, PY (the venv's), LLAMA_VERSION (optional).
set -euo pipefail
version=${LLAMA_VERSION:-0.3.36}
flags="-DGGML_NATIVE=OFF"
# pip's own wheel cache ignores CMAKE_ARGS, so the flags are part of our cache key.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/nightloop/wheels/llama-cpp-python-$version-native-off"
mkdir -p "$cache"
wheel=$(ls "$cache"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
    echo "Building llama-cpp-python $version with CMAKE_ARGS=$flags (about 11 minutes on 2 cores)..."
    tmp=$(mktemp -d)
    CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
        $PIP wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
        "llama-cpp-python==$version" -w "$tmp"
    mv "$tmp"/llama_cpp_python-*.whl "$cache"/
    rm -rf "$tmp"
    wheel=$(ls "$cache"/llama_cpp_python-"$version"-*.whl | head -n 1)
fi
$PIP install "$wheel"
$PY - <<'PY'
from llama_cpp import Llama

from daemon.core.models import shipped_model

model = shipped_model()
llm = Llama(model_path=str(model), n_ctx=256, n_threads=2, verbose=False)
out = llm("The capital of France is", max_tokens=4, temperature=0.0)
text = out["choices"][0]["text"]
assert out["usage"]["completion_tokens"] > 0, out
print(f"llama-cpp-python smoke test ok: {text!r}")
PY
