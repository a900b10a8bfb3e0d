// Registers the binding; everything else lives in its own file.
#include <napi.h>

#include "addon_data.h"
#include "backend.h"
#include "controls.h"
#include "cpu_allocator.h"
#include "errors.h"
#include "executor.h"
#include "extractor.h"
#include "file_writer.h"
#include "frame_run.h"
#include "internal_hooks.h"
#include "interpolator.h"
#include "io_thread.h"
#include "model.h"
#include "promise_task.h"
#include "rename.h"

#include <string>

namespace film {
namespace {

Napi::Value CudaDeviceCountJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), backend::CudaDeviceCount()); });
}

// process.exit() on the main thread: called from process.on('exit'), before exit() starts tearing
// down oneDNN's (and libtorch's) statics (some register their destructors lazily, after any atexit
// handler of ours), so runs in flight finish first and queued ones are dropped.
Napi::Value ShutdownJs(const Napi::CallbackInfo& info) {
  Executor::Get().ShutdownAtExit();
  IoThread::Get().ShutdownAtExit();
  return info.Env().Undefined();
}

// process.emitWarning(message, { code }); a warning that cannot be emitted is dropped, never thrown.
void EmitProcessWarning(Napi::Env env, const std::string& message, const char* code) {
  try {
    Napi::Object process = env.Global().Get("process").As<Napi::Object>();
    Napi::Object options = Napi::Object::New(env);
    options.Set("code", code);
    process.Get("emitWarning").As<Napi::Function>().Call(process, {Napi::String::New(env, message), options});
  } catch (...) {
  }
}

Napi::Object InitExports(Napi::Env env, Napi::Object exports) {
  // Before anything runs: the cache must make every block it is later handed back.
  backend::Install();
  // once per process: what was wrong with FILM_FEATURES_CPU_CACHE_MB
  const std::string cache_warning = TakeCpuCacheEnvWarning();
  if (!cache_warning.empty()) EmitProcessWarning(env, cache_warning, "FILM_FEATURES_ENV");
  auto* data = new AddonData();
  data->extractor_constructor = Napi::Persistent(Extractor::Define(env));
  data->interpolator_constructor = Napi::Persistent(Interpolator::Define(env));
  env.SetInstanceData(data);
  data->link = EnvLink::Create(env);

  // "full" (libtorch: TorchScript, CUDA, the Interpolator) or "core" (the oneDNN engine alone).
  exports.Set("build", Napi::String::New(env, backend::BuildName()));
  exports.Set("load", Napi::Function::New(env, Extractor::Load, "load"));
  exports.Set("loadInterpolator", Napi::Function::New(env, Interpolator::Load, "loadInterpolator"));
  exports.Set("cudaCompiledIn", Napi::Boolean::New(env, backend::CudaCompiledIn()));
  exports.Set("onednnCompiledIn", Napi::Boolean::New(env, OnednnCompiledIn()));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCountJs, "cudaDeviceCount"));
  exports.Set("encodeLevel", Napi::Function::New(env, EncodeLevelJs, "encodeLevel"));
  exports.Set("writeFiles", Napi::Function::New(env, WriteFilesJs, "writeFiles"));
  exports.Set("releaseLevels", Napi::Function::New(env, ReleaseLevelsJs, "releaseLevels"));
  exports.Set("rename", Napi::Function::New(env, RenameJs, "rename"));
  exports.Set("shutdownForExit", Napi::Function::New(env, ShutdownJs, "shutdownForExit"));
  if (*backend::TorchVersion()) exports.Set("torchVersion", Napi::String::New(env, backend::TorchVersion()));
  ExportControls(env, exports);
  backend::Export(env, exports);
  ExportInternal(env, exports);
  return exports;
}

// Whatever the set-up throws becomes the JS error that require() throws.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  return Guard(env, [&]() -> Napi::Value { return InitExports(env, exports); }).As<Napi::Object>();
}

}  // namespace
}  // namespace film

// NODE_API_MODULE pastes the name into an identifier, so it needs an unqualified one.
static Napi::Object InitFilmFeatures(Napi::Env env, Napi::Object exports) { return film::Init(env, exports); }
NODE_API_MODULE(film_features, InitFilmFeatures)
