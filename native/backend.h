// The line between the core and libtorch: what only the libtorch backend (native/torch/) can do.
// The full build links native/torch/backend.cc; the core build links native/core_backend.cc, whose
// functions have no libtorch to call and say so (ERR_FILM_NEEDS_LIBTORCH).
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "cpu_allocator.h"
#include "errors.h"
#include "film_interpolator.h"
#include "model.h"

namespace film {
namespace backend {

// "full" (libtorch linked) or "core".
const char* BuildName();
// libtorch's version ("2.6.0"), or "" in the core build.
const char* TorchVersion();

// Once, when the addon loads, before anything runs: libtorch's CPU allocator becomes the addon's
// cache (cpu_allocator.h), and cuDNN's settings are read from the environment.
void Install();
// For binding._internal.probeCpuCache: whether every CPU tensor comes from the cache.
CpuCacheProbe ProbeAllocator();

// Before the calling thread's OpenMP count is set: libtorch's once-per-thread set-up (which would
// later overwrite it), and its own OpenMP runtime's count where that is another copy.
void SetTorchThreads(int n);

bool CudaCompiledIn();
int CudaDeviceCount();
// "cpu" or "cuda:N" for a device option ("auto", "cpu", "cuda", "cuda:N"); RangeError or
// ERR_FILM_DEVICE for what cannot run here.
std::string ResolveDevice(const std::string& spec, bool half);
// Returns cached, unused accelerator memory to the driver; nothing on CPU.
void ReleaseCachedMemory();

// The file's TorchScript, checked and loaded on options.device; optimize: frozen, optimized and
// warmed up for runs (else plain, to check the engine against). Fills info's torchscript fields.
std::shared_ptr<ScriptRunner> LoadScriptExtractor(const LoadOptions& options, bool optimize, ModelInfo* info);

// The file's TorchScript interpolator, checked, optimized and warmed up; fills info's TorchScript
// fields (dtype, dt_rank, optimized, engine, code_run).
std::shared_ptr<FrameRunner> LoadScriptInterpolator(const LoadOptions& options, InterpolatorInfo* info);

// An ErrorInfo for the exception being handled when it is libtorch's (c10::Error and the like);
// false for anything else.
bool DescribeTorchException(ErrorInfo* info);

// The backend's exports (cuDNN's settings).
void Export(Napi::Env env, Napi::Object exports);

// The error for what only libtorch runs: what, and how to get it.
inline UserError NeedsLibtorch(const std::string& what) {
  return UserError(ErrorKind::kError,
                   what + " needs libtorch, and this is film-features' core build (the fused oneDNN engine on the "
                          "CPU, without libtorch). Install libtorch (Debian/Ubuntu: apt-get install libtorch-dev) "
                          "and reinstall film-features, or build against another: npx film-features setup --libtorch PATH",
                   code::kNeedsLibtorch);
}

}  // namespace backend
}  // namespace film
