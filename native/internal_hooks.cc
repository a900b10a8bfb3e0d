#include "internal_hooks.h"

#include "bound_model.h"
#include "cpu_allocator.h"
#include "errors.h"
#include "idle_release.h"
#include "tensor_io.h"

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

}  // namespace

void ExportInternal(Napi::Env env, Napi::Object exports) {
  Napi::Object internal = Napi::Object::New(env);
  internal.Set("dataAddress", Napi::Function::New(env, DataAddressJs, "dataAddress"));
  internal.Set("idleReleases", Napi::Function::New(env, IdleReleasesJs, "idleReleases"));
  internal.Set("defaultCacheLimit", Napi::Function::New(env, DefaultCacheLimitJs, "defaultCacheLimit"));
  internal.Set("RUN_WITH_ADDRESSES", Napi::Number::New(env, run_flag::kWithAddresses));
  internal.Freeze();
  exports.Set("_internal", internal);
}

}  // namespace film
