// Registers the binding; everything else lives in its own file.
#include <napi.h>

#include "addon_data.h"
#include "cpu_allocator.h"
#include "cudnn_settings.h"
#include "errors.h"
#include "executor.h"
#include "extractor.h"
#include "frame_run.h"
#include "idle_release.h"
#include "interpolator.h"
#include "model.h"
#include "promise_task.h"
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

// Process-wide admission counters, like sharp.counters(): what the executor runs now and the most
// it has run at once.
Napi::Value CountersJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ExecutorCounters c = Executor::Get().Counters();
  Napi::Object out = Napi::Object::New(env);
  out.Set("cores", c.capacity);
  out.Set("queued", c.queued);
  out.Set("running", c.running);
  out.Set("threads", c.threads);
  out.Set("peakThreads", c.peak_threads);
  out.Set("observedThreads", c.observed);
  out.Set("peakObservedThreads", c.peak_observed);
  out.Set("completed", static_cast<double>(c.completed));
  return out;
}

Napi::Value CpuCacheJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuCacheState state = GetCpuCacheState();
  Napi::Object out = Napi::Object::New(env);
  out.Set("limit", static_cast<double>(state.limit));
  out.Set("cached", static_cast<double>(state.cached));
  out.Set("idleReleases", static_cast<double>(IdleReleases()));
  out.Set("compiledIn", CpuCacheCompiledIn());
  return out;
}

// process.exit() on the main thread: called from process.on('exit'), before exit() starts tearing
// down libtorch's and oneDNN's statics (some register their destructors lazily, after any atexit
// handler of ours), so runs in flight finish first and queued ones are dropped.
Napi::Value ShutdownJs(const Napi::CallbackInfo& info) {
  Executor::Get().ShutdownAtExit();
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCachingCpuAllocator();
  InitCudnnBenchmark();
  auto* data = new AddonData();
  data->extractor_constructor = Napi::Persistent(Extractor::Define(env));
  data->interpolator_constructor = Napi::Persistent(Interpolator::Define(env));
  env.SetInstanceData(data);
  data->link = EnvLink::Create(env);

  exports.Set("load", Napi::Function::New(env, Extractor::Load, "load"));
  exports.Set("loadInterpolator", Napi::Function::New(env, Interpolator::Load, "loadInterpolator"));
  exports.Set("cudaCompiledIn", Napi::Boolean::New(env, CudaCompiledIn()));
  exports.Set("onednnCompiledIn", Napi::Boolean::New(env, OnednnCompiledIn()));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCountJs, "cudaDeviceCount"));
  exports.Set("releaseCachedMemory", Napi::Function::New(env, ReleaseCachedMemoryJs, "releaseCachedMemory"));
  exports.Set("releaseWhenIdle", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    ReleaseWhenIdle();
    return info.Env().Undefined();
  }, "releaseWhenIdle"));
  exports.Set("encodeLevel", Napi::Function::New(env, EncodeLevelJs, "encodeLevel"));
  exports.Set("dataAddress", Napi::Function::New(env, DataAddressJs, "dataAddress"));
  exports.Set("cpuCache", Napi::Function::New(env, CpuCacheJs, "cpuCache"));
  exports.Set("shutdownForExit", Napi::Function::New(env, ShutdownJs, "shutdownForExit"));
  exports.Set("counters", Napi::Function::New(env, CountersJs, "counters"));
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  ExportCudnnSettings(env, exports);
  return exports;
}

}  // namespace
}  // namespace film

// NODE_API_MODULE pastes the name into an identifier, so it needs an unqualified one.
static Napi::Object InitFilmFeatures(Napi::Env env, Napi::Object exports) { return film::Init(env, exports); }
NODE_API_MODULE(film_features, InitFilmFeatures)
