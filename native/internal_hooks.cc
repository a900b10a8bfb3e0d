#include "internal_hooks.h"

#include "backend.h"
#include "bound_model.h"
#include "cpu_allocator.h"
#include "errors.h"
#include "extractor.h"
#include "idle_release.h"
#include "interpolator.h"
#include "tensor_io.h"

#ifdef FILM_WITH_ONEDNN
#include "onednn/film_net.h"
#endif

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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
      return Interpolator::HandoffOf(info.Env(), info[0]);  // a TypeError when it is neither
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

// {data: Float32Array, shape: number[]} as a float32 tensor (a copy); `what` names it in errors.
Tensor Float32Of(const Napi::Value& value, const std::string& what) {
  FILM_TYPE_ERROR_IF(!value.IsObject() || value.IsArray() || value.IsTypedArray(),
                     what + " must be an object {data: Float32Array, shape: number[]}");
  const Napi::Object object = value.As<Napi::Object>();
  const Napi::Value data = object.Get("data"), shape = object.Get("shape");
  FILM_TYPE_ERROR_IF(!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array,
                     what + ".data must be a Float32Array");
  FILM_TYPE_ERROR_IF(!shape.IsArray(), what + ".shape must be an array of sizes");
  const Napi::Array dims = shape.As<Napi::Array>();
  FILM_RANGE_ERROR_IF(dims.Length() > 8, what + ".shape has more than 8 dimensions");
  std::vector<int64_t> sizes;
  double numel = 1;
  for (uint32_t i = 0; i < dims.Length(); ++i) {
    const Napi::Value d = dims.Get(i);
    FILM_TYPE_ERROR_IF(!d.IsNumber(), what + ".shape[" + std::to_string(i) + "] must be a number");
    const double size = d.As<Napi::Number>().DoubleValue();
    FILM_RANGE_ERROR_IF(!(size >= 0 && size <= 2147483647.0 && size == std::floor(size)),
                        what + ".shape[" + std::to_string(i) + "] must be an integer from 0 to 2^31 - 1");
    sizes.push_back(static_cast<int64_t>(size));
    numel *= size;
  }
  const Napi::Float32Array array = data.As<Napi::Float32Array>();
  FILM_RANGE_ERROR_IF(numel != static_cast<double>(array.ElementLength()),
                      what + ": shape " + ShapeString(sizes) + " does not match data of " +
                          std::to_string(array.ElementLength()) + " floats");
  Tensor t = Tensor::Empty(sizes);
  if (array.ElementLength()) std::memcpy(t.data(), array.Data(), array.ElementLength() * sizeof(float));
  return t;
}

// filmNetForward(tensors, x0, x1, dt, levels, repeats = 1, memory = {}): FILM's whole interpolator on
// the oneDNN engine (onednn/film_net.h), synchronously on this thread. tensors: {name: {data, shape}}
// by the PyTorch port's names; x0, x1: {data, shape [n, 3, h, w]}; dt: one time per pair; memory:
// {recompute?, whole?, band?} (FilmNetMemory), precision?: 'fp32' | 'bf16'. Runs `repeats` times; returns
// {data, shape, runsMs: [ms per run], stagesMs: the last run's stages}.
Napi::Value FilmNetForwardJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const char* usage = "filmNetForward(tensors: object, x0: {data, shape}, x1: {data, shape}, dt: number[], levels: number, repeats?: number, memory?: {recompute?: number, whole?: boolean, band?: number, precision?: 'fp32' | 'bf16'})";
    FILM_TYPE_ERROR_IF(info.Length() < 5, usage);
    FILM_TYPE_ERROR_IF(!info[0].IsObject() || info[0].IsArray(), std::string("tensors must be an object: ") + usage);
    std::map<std::string, Tensor> weights;
    const Napi::Object tensors = info[0].As<Napi::Object>();
    const Napi::Array names = tensors.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); ++i) {
      const std::string name = names.Get(i).ToString();
      weights[name] = Float32Of(tensors.Get(name), "tensors['" + name + "']");
    }
    const Tensor x0 = Float32Of(info[1], "x0"), x1 = Float32Of(info[2], "x1");
    FILM_TYPE_ERROR_IF(!info[3].IsArray(), "dt must be an array of numbers");
    const Napi::Array times = info[3].As<Napi::Array>();
    FILM_RANGE_ERROR_IF(times.Length() > (1u << 20), "dt is too long");
    std::vector<float> dt;
    for (uint32_t i = 0; i < times.Length(); ++i) {
      const Napi::Value t = times.Get(i);
      FILM_TYPE_ERROR_IF(!t.IsNumber(), "dt[" + std::to_string(i) + "] must be a number");
      const double value = t.As<Napi::Number>().DoubleValue();
      FILM_RANGE_ERROR_IF(!std::isfinite(value), "dt[" + std::to_string(i) + "] must be finite");
      dt.push_back(static_cast<float>(value));
    }
    FILM_TYPE_ERROR_IF(!info[4].IsNumber(), "levels must be a number");
    const double levels = info[4].As<Napi::Number>().DoubleValue();
    FILM_RANGE_ERROR_IF(!(levels >= 1 && levels <= 16 && levels == std::floor(levels)), "levels must be an integer from 1 to 16");
    double repeats = 1;
    if (info.Length() > 5 && !info[5].IsUndefined()) {
      FILM_TYPE_ERROR_IF(!info[5].IsNumber(), "repeats must be a number");
      repeats = info[5].As<Napi::Number>().DoubleValue();
      FILM_RANGE_ERROR_IF(!(repeats >= 1 && repeats <= 100 && repeats == std::floor(repeats)), "repeats must be an integer from 1 to 100");
    }
#ifdef FILM_WITH_ONEDNN
    onednn::FilmNetMemory memory;
    onednn::Precision precision = onednn::Precision::kF32;
    if (info.Length() > 6 && !info[6].IsUndefined()) {
      FILM_TYPE_ERROR_IF(!info[6].IsObject(), "memory must be an object");
      const Napi::Object m = info[6].As<Napi::Object>();
      const auto integer = [&](const char* key, double low, double high) {
        const Napi::Value v = m.Get(key);
        FILM_TYPE_ERROR_IF(!v.IsNumber(), std::string("memory.") + key + " must be a number");
        const double d = v.As<Napi::Number>().DoubleValue();
        FILM_RANGE_ERROR_IF(!(d >= low && d <= high && d == std::floor(d)), std::string("memory.") + key + " is out of range");
        return d;
      };
      if (m.Has("recompute")) memory.recompute = static_cast<int>(integer("recompute", -1, 15));
      if (m.Has("whole")) {
        FILM_TYPE_ERROR_IF(!m.Get("whole").IsBoolean(), "memory.whole must be a boolean");
        memory.whole = m.Get("whole").As<Napi::Boolean>();
      }
      if (m.Has("band")) memory.band = static_cast<int64_t>(integer("band", 0, 1 << 20));
      if (m.Has("precision")) {
        const Napi::Value v = m.Get("precision");
        const std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
        FILM_RANGE_ERROR_IF(name != "fp32" && name != "bf16", "memory.precision must be 'fp32' or 'bf16'");
        if (name == "bf16") precision = onednn::Precision::kBf16;
      }
    }
    std::unique_ptr<onednn::FilmNet> net;
    try {
      net.reset(new onednn::FilmNet(weights, precision));
    } catch (const std::invalid_argument& e) {
      throw UserError(ErrorKind::kError, e.what(), code::kModelFormat);
    }
    Tensor out;
    onednn::FilmNetTimes stages;
    Napi::Array runs = Napi::Array::New(env);
    for (int r = 0; r < static_cast<int>(repeats); ++r) {
      const auto start = std::chrono::steady_clock::now();
      try {
        out = net->Run(x0, x1, dt, static_cast<int>(levels), &stages, memory);
      } catch (const std::invalid_argument& e) {
        throw UserError(ErrorKind::kRangeError, e.what());
      }
      runs.Set(r, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    Napi::Float32Array data = Napi::Float32Array::New(env, static_cast<size_t>(out.numel()));
    std::memcpy(data.Data(), out.data(), out.nbytes());
    Napi::Array shape = Napi::Array::New(env);
    for (size_t d = 0; d < out.sizes().size(); ++d) shape.Set(static_cast<uint32_t>(d), static_cast<double>(out.sizes()[d]));
    Napi::Object stage = Napi::Object::New(env);
    stage.Set("extract", stages.extract);
    stage.Set("flow", stages.flow);
    stage.Set("flowWarp", stages.flow_warp);
    stage.Set("align", stages.align);
    stage.Set("fusion", stages.fusion);
    Napi::Object result = Napi::Object::New(env);
    result.Set("data", data);
    result.Set("shape", shape);
    result.Set("runsMs", runs);
    result.Set("stagesMs", stage);
    return result;
#else
    throw UserError(ErrorKind::kError, "filmNetForward: this build has no oneDNN engine");
#endif
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
  internal.Set("filmNetForward", Napi::Function::New(env, FilmNetForwardJs, "filmNetForward"));
  internal.Set("RUN_WITH_ADDRESSES", Napi::Number::New(env, run_flag::kWithAddresses));
  internal.Freeze();
  exports.Set("_internal", internal);
}

}  // namespace film
