#include "internal_hooks.h"

#include "backend.h"
#include "bound_model.h"
#include "cpu_allocator.h"
#include "errors.h"
#include "extractor.h"
#include "idle_release.h"
#include "tensor_io.h"

#include <utility>

namespace film {
namespace {

// The address of a typed array's first element: equal to an output's tensorAddress when zero-copy.
Napi::Value DataAddressJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "Expected a typed array");
  return Napi::BigInt::New(env, DataAddress(info[0].As<Napi::TypedArray>()));
}

// How many idle releases have run (the cache's bytes: binding.cache()).
Napi::Value IdleReleasesJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(IdleReleases()));
}

// The default cache limit were the cgroup file system mounted at root.
Napi::Value DefaultCacheLimitJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() < 1 || !info[0].IsString(), "defaultCacheLimit(cgroupRoot: string)");
    const std::string root = info[0].As<Napi::String>();
    return Napi::Number::New(info.Env(), static_cast<double>(DefaultCpuCacheLimit(root)));
  });
}

// The External load() would hand a NativeExtractor's or NativeInterpolator's constructor, for the model
// of the handle given: shows each constructor the other class's (test/68.binding-types).
Napi::Value HandoffOfJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() < 1, "handoffOf(handle: NativeExtractor | NativeInterpolator)");
    try {
      return Extractor::HandoffOf(info.Env(), info[0]);
    } catch (const UserError&) {
      return backend::InterpolatorHandoffOf(info.Env(), info[0]);  // a TypeError when it is neither
    }
  });
}

// What the CPU block cache does with a block freed through it (cpu_allocator.h: CpuCacheProbe).
Napi::Value ProbeCpuCacheJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const CpuCacheProbe probe = ProbeCpuCache(backend::ProbeAllocator());
    Napi::Object out = Napi::Object::New(info.Env());
    const std::pair<const char*, bool> fields[] = {{"asan", probe.asan},         {"installed", probe.installed},
                                                   {"cached", probe.cached},     {"poisoned", probe.poisoned},
                                                   {"reused", probe.reused},     {"unpoisoned", probe.unpoisoned}};
    for (const auto& [name, value] : fields) out.Set(name, value);
    return out;
  });
}

}  // namespace

void ExportInternal(Napi::Env env, Napi::Object exports) {
  Napi::Object internal = Napi::Object::New(env);
  internal.Set("dataAddress", Napi::Function::New(env, DataAddressJs, "dataAddress"));
  internal.Set("idleReleases", Napi::Function::New(env, IdleReleasesJs, "idleReleases"));
  internal.Set("defaultCacheLimit", Napi::Function::New(env, DefaultCacheLimitJs, "defaultCacheLimit"));
  internal.Set("handoffOf", Napi::Function::New(env, HandoffOfJs, "handoffOf"));
  internal.Set("probeCpuCache", Napi::Function::New(env, ProbeCpuCacheJs, "probeCpuCache"));
  internal.Set("RUN_WITH_ADDRESSES", Napi::Number::New(env, run_flag::kWithAddresses));
  internal.Freeze();
  exports.Set("_internal", internal);
}

}  // namespace film
