#include "controls.h"

#include "backend.h"
#include "cpu_allocator.h"
#include "errors.h"
#include "executor.h"
#include "idle_release.h"
#include "model.h"

namespace film {
namespace {

Napi::Object CacheState(Napi::Env env, const CpuCacheState& state) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("limit", static_cast<double>(state.limit));
  out.Set("cached", static_cast<double>(state.cached));
  out.Set("high", static_cast<double>(state.high));
  out.Set("initialLimit", static_cast<double>(InitialCpuCacheLimit()));
  out.Set("compiledIn", true);
  return out;
}

// cache(): the CPU block cache's state, in bytes. cache(limit): sets its limit first; 0 also frees,
// now and on this thread, every cached block, the C heap's free pages and cached GPU memory.
Napi::Value CacheJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      FILM_TYPE_ERROR_IF(!info[0].IsNumber(), "cache(limitBytes?: number)");
      const double limit = info[0].As<Napi::Number>().DoubleValue();
      FILM_RANGE_ERROR_IF(!(limit >= 0 && limit <= 9007199254740991.0), "Expected a limit of 0 or more bytes");
      SetCpuCacheLimit(static_cast<size_t>(limit));
      if (limit == 0) ReleaseMemoryNow();
    }
    return CacheState(info.Env(), GetCpuCacheState());
  });
}

// concurrency(): the cores the executor shares out. concurrency(n): sets them (0: the default).
Napi::Value ConcurrencyJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    int n = -1;
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      FILM_TYPE_ERROR_IF(!info[0].IsNumber(), "concurrency(n?: number)");
      const double value = info[0].As<Napi::Number>().DoubleValue();
      FILM_RANGE_ERROR_IF(!(value >= 0 && value <= 1024 && value == static_cast<int>(value)),
                          "Expected an integer concurrency from 0 to 1024");
      n = static_cast<int>(value);
    }
    return Napi::Number::New(info.Env(), Executor::Get().Concurrency(n));
  });
}

// What the executor runs now and the most it has run at once, like sharp.counters().
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

Napi::Value ReleaseCachedMemoryJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    backend::ReleaseCachedMemory();
    return Napi::Number::New(info.Env(), static_cast<double>(ReleaseCpuCache()));
  });
}

}  // namespace

void ExportControls(Napi::Env env, Napi::Object exports) {
  exports.Set("cache", Napi::Function::New(env, CacheJs, "cache"));
  exports.Set("concurrency", Napi::Function::New(env, ConcurrencyJs, "concurrency"));
  exports.Set("counters", Napi::Function::New(env, CountersJs, "counters"));
  exports.Set("releaseCachedMemory", Napi::Function::New(env, ReleaseCachedMemoryJs, "releaseCachedMemory"));
  exports.Set("releaseWhenIdle", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    ReleaseWhenIdle();
    return info.Env().Undefined();
  }, "releaseWhenIdle"));
}

}  // namespace film
