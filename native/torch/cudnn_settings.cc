#include "cudnn_settings.h"

#include <ATen/Context.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "errors.h"

namespace film {

void InitCudnnBenchmark() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* value = std::getenv("FILM_FEATURES_CUDNN_BENCHMARK");
    at::globalContext().setBenchmarkCuDNN(!(value && std::strcmp(value, "0") == 0));
  });
}

void ExportCudnnSettings(Napi::Env env, Napi::Object exports) {
  exports.Set("setCudnnBenchmark", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Guard(info.Env(), [&]() -> Napi::Value {
      FILM_TYPE_ERROR_IF(info.Length() < 1 || !info[0].IsBoolean(), "setCudnnBenchmark(enabled: boolean)");
      at::globalContext().setBenchmarkCuDNN(info[0].As<Napi::Boolean>());
      return info.Env().Undefined();
    });
  }, "setCudnnBenchmark"));
  exports.Set("cudnnBenchmark", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Napi::Boolean::New(info.Env(), at::globalContext().benchmarkCuDNN());
  }, "cudnnBenchmark"));
}

}  // namespace film
