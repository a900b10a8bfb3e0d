// The core build's side of the line (backend.h): no libtorch. What only libtorch runs is
// ERR_FILM_NEEDS_LIBTORCH, with how to get it.
#include "backend.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace film {
namespace backend {

const char* BuildName() { return "core"; }
const char* TorchVersion() { return ""; }

void Install() { InstallCpuCache(); }

CpuCacheProbe ProbeAllocator() {
  CpuCacheProbe probe;
  probe.installed = true;  // every CPU tensor is the addon's own
  return probe;
}

void SetTorchThreads(int /*n*/) {}

bool CudaCompiledIn() { return false; }
int CudaDeviceCount() { return 0; }

std::string ResolveDevice(const std::string& spec, bool half) {
  if (spec == "auto" || spec == "cpu") {
    FILM_RANGE_ERROR_IF(half, "half: true needs a CUDA device; fp16 on CPU is not supported");
    return "cpu";
  }
  FILM_RANGE_ERROR_IF(spec != "cuda" && spec.rfind("cuda:", 0) != 0,
                      "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received '" + spec + "'");
  throw NeedsLibtorch("device '" + spec + "'");
}

void ReleaseCachedMemory() {}

std::shared_ptr<ScriptRunner> LoadScriptExtractor(const LoadOptions& /*options*/, bool /*optimize*/, ModelInfo* /*info*/) {
  throw NeedsLibtorch("engine 'torchscript'");
}

bool DescribeTorchException(ErrorInfo* /*info*/) { return false; }

namespace {
// cuDNN's benchmark mode: no GPU runs here, but the process-wide switch reads as in the full build.
std::atomic<bool> cudnn_benchmark{[] {
  const char* value = std::getenv("FILM_FEATURES_CUDNN_BENCHMARK");
  return !(value && std::strcmp(value, "0") == 0);
}()};
}  // namespace

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("setCudnnBenchmark", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Guard(info.Env(), [&]() -> Napi::Value {
      FILM_TYPE_ERROR_IF(info.Length() < 1 || !info[0].IsBoolean(), "setCudnnBenchmark(enabled: boolean)");
      cudnn_benchmark = info[0].As<Napi::Boolean>().Value();
      return info.Env().Undefined();
    });
  }, "setCudnnBenchmark"));
  exports.Set("cudnnBenchmark", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Napi::Boolean::New(info.Env(), cudnn_benchmark.load());
  }, "cudnnBenchmark"));
}

std::shared_ptr<FrameRunner> LoadScriptInterpolator(const LoadOptions& /*options*/, InterpolatorInfo* /*info*/) {
  throw NeedsLibtorch("the file's TorchScript");
}

}  // namespace backend
}  // namespace film
