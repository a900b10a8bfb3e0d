#!/bin/bash
# On a machine with a GPU and a CUDA libtorch (python3's torch): compiles native/errors.cc with a
# probe that asks CUDA for 4 TiB, and prints the code our exception boundary gives the real
# c10::OutOfMemoryError; ERR_FILM_OUT_OF_MEMORY is right (it derives from c10::Error, so the order of
# the catches decides). No test hook in the addon: the probe is its own program.
set -euo pipefail
R=$(cd "$(dirname "$0")/.." && pwd)
T=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
A=$(python3 -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cat > "$W/probe.cc" <<'E'
#include "errors.h"
#include <ATen/ATen.h>
#include <cstdio>
int main() {
  try {
    at::empty({int64_t(1) << 40}, at::TensorOptions().device(at::kCUDA));
    std::puts("allocated 4 TiB?");
    return 1;
  } catch (...) {
    const film::ErrorInfo info = film::DescribeCurrentException();
    std::printf("%s | %.110s\n", info.code.c_str(), info.message.c_str());
    return info.code == "ERR_FILM_OUT_OF_MEMORY" ? 0 : 1;
  }
}
E
# -ffunction-sections + --gc-sections drop the N-API functions, which need a running Node.
g++ -std=c++17 -O0 -ffunction-sections -DNAPI_CPP_EXCEPTIONS -D_GLIBCXX_USE_CXX11_ABI="$A" -I"$R/native" \
  -I"$R/node_modules/node-addon-api" -I"$R/node_modules/node-api-headers/include" -isystem "$T/include" \
  -isystem "$T/include/torch/csrc/api/include" "$W/probe.cc" "$R/native/errors.cc" -o "$W/probe" -L"$T/lib" \
  -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda -Wl,-rpath,"$T/lib" -Wl,--gc-sections -Wl,--no-as-needed
"$W/probe"
