// Registers the binding; everything else lives in its own file.
#include <napi.h>

#include "addon_data.h"
#include "cpu_allocator.h"
#include "errors.h"
#include "extractor.h"
#include "model.h"
#include "tensor_io.h"

#include <torch/version.h>

namespace film {
namespace {

Napi::Value CudaDeviceCountJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), CudaDeviceCount()); });
}

Napi::Value ReleaseCachedMemoryJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    ReleaseCachedMemory();
    return Napi::Number::New(info.Env(), static_cast<double>(ReleaseCpuCache()));
  });
}

Napi::Value DataAddressJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "Expected a typed array");
  return Napi::BigInt::New(env, DataAddress(info[0].As<Napi::TypedArray>()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCachingCpuAllocator();
  auto* data = new AddonData();
  data->extractor_constructor = Napi::Persistent(Extractor::Define(env));
  env.SetInstanceData(data);

  exports.Set("load", Napi::Function::New(env, Extractor::Load, "load"));
  exports.Set("cudaCompiledIn", Napi::Boolean::New(env, CudaCompiledIn()));
  exports.Set("onednnCompiledIn", Napi::Boolean::New(env, OnednnCompiledIn()));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCountJs, "cudaDeviceCount"));
  exports.Set("releaseCachedMemory", Napi::Function::New(env, ReleaseCachedMemoryJs, "releaseCachedMemory"));
  exports.Set("dataAddress", Napi::Function::New(env, DataAddressJs, "dataAddress"));
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  return exports;
}

}  // namespace
}  // namespace film

// NODE_API_MODULE pastes the name into an identifier, so it needs an unqualified one.
static Napi::Object InitFilmFeatures(Napi::Env env, Napi::Object exports) { return film::Init(env, exports); }
NODE_API_MODULE(film_features, InitFilmFeatures)
