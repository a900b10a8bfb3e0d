// The libtorch backend (backend.h): the full build's side of the line.
#include "backend.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/version.h>

#ifdef FILM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>

#include "cuda_staging.h"
#endif

#include <regex>
#include <type_traits>

#include "cudnn_settings.h"
#include "devices.h"
#include "interpolator_model.h"
#include "script_extractor.h"
#include "torch_allocator.h"

namespace film {

c10::Device TorchDevice(const std::string& spec, bool half) {
  if (spec == "auto") {
    if (TorchCudaDeviceCount() > 0) return c10::Device(c10::kCUDA, 0);
    FILM_RANGE_ERROR_IF(half, "half: true needs a CUDA device, and device 'auto' found none");
    return c10::Device(c10::kCPU);
  }
  if (spec == "cpu") {
    FILM_RANGE_ERROR_IF(half, "half: true needs a CUDA device; fp16 on CPU is not supported");
    return c10::Device(c10::kCPU);
  }
  static const std::regex cuda(R"(^cuda(?::(\d{1,4}))?$)");
  std::smatch m;
  FILM_RANGE_ERROR_IF(!std::regex_match(spec, m, cuda),
                      "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received '" + spec + "'");
  if (!backend::CudaCompiledIn()) {
    throw UserError(ErrorKind::kError, "device '" + spec + "': film-features was built against a CPU-only libtorch; " +
                                           "rebuild it against a CUDA libtorch (set LIBTORCH or Torch_DIR)", code::kDevice);
  }
  const int index = m[1].matched ? std::stoi(m[1]) : 0;
  const int count = TorchCudaDeviceCount();
  if (index >= count) {
    throw UserError(ErrorKind::kError, "device '" + spec + "': " + std::to_string(count) + " CUDA device(s) present",
                    code::kDevice);
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

int TorchCudaDeviceCount() { return backend::CudaCompiledIn() ? static_cast<int>(torch::cuda::device_count()) : 0; }

namespace backend {
namespace {

using SetFn = void (*)(int);

// libtorch's own omp_set_num_threads: pytorch.org's builds carry their own copy of OpenMP.
SetFn FindTorchOmpSetNumThreads() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&at::init_num_threads), &info) == 0 || !info.dli_fname) return nullptr;
  void* torch = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (!torch) return nullptr;
  // With a handle, dlsym searches the library and then its dependencies.
  auto fn = reinterpret_cast<SetFn>(dlsym(torch, "omp_set_num_threads"));
  dlclose(torch);  // NOLOAD only added a reference; the library stays loaded
  return fn;
}

static_assert(std::is_base_of_v<c10::Error, c10::OutOfMemoryError>,
              "c10::OutOfMemoryError must be caught before c10::Error");

}  // namespace

const char* BuildName() { return "full"; }
const char* TorchVersion() { return TORCH_VERSION; }

void Install() {
  // Before anything runs on libtorch: the cache must make every block it is later handed back.
  InstallTorchAllocator();
  InitCudnnBenchmark();
}

CpuCacheProbe ProbeAllocator() { return ProbeTorchAllocator(); }

void SetTorchThreads(int n) {
  static const SetFn torch_omp_set_num_threads = FindTorchOmpSetNumThreads();
  // Let libtorch run its once-per-thread init first (it adopts the process-wide value), so that
  // it cannot later overwrite the count set here.
  at::get_num_threads();
  if (torch_omp_set_num_threads) {
    torch_omp_set_num_threads(n);
  } else {
    at::set_num_threads(n);
  }
}

bool CudaCompiledIn() {
#ifdef FILM_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int CudaDeviceCount() { return TorchCudaDeviceCount(); }

std::string ResolveDevice(const std::string& spec, bool half) { return TorchDevice(spec, half).str(); }

void ReleaseCachedMemory() {
#ifdef FILM_WITH_CUDA
  c10::cuda::CUDACachingAllocator::emptyCache();
  cuda::ReleasePinnedMemory();
#endif
}

std::shared_ptr<ScriptRunner> LoadScriptExtractor(const LoadOptions& options, bool optimize, ModelInfo* info) {
  return ScriptExtractor::Load(options, TorchDevice(options.device, options.half), optimize, info);
}

bool DescribeTorchException(ErrorInfo* info) {
  try {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    // Before c10::Error, which it derives from (CUDA's caching allocator throws it).
    info->code = code::kOutOfMemory;
    info->message = e.what_without_backtrace();
    return true;
  } catch (const c10::Error& e) {
    info->message = e.what_without_backtrace();
    return true;
  } catch (...) {
    return false;
  }
}

void Export(Napi::Env env, Napi::Object exports) { ExportCudnnSettings(env, exports); }

std::shared_ptr<FrameRunner> LoadScriptInterpolator(const LoadOptions& options, InterpolatorInfo* info) {
  return InterpolatorModel::Load(options, info);
}

}  // namespace backend
}  // namespace film
