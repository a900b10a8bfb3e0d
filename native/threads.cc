#include "threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sched.h>

#include <thread>

namespace film {
namespace {

using SetFn = void (*)(int);

// omp_set_num_threads from the OpenMP runtime libtorch itself links (libgomp for Debian's, a
// bundled libgomp-*.so for libtorch zips): looked up through libtorch's own library, so the
// addon never links a second runtime. Null when libtorch has no OpenMP backend.
SetFn FindOmpSetNumThreads() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&at::init_num_threads), &info) == 0 || !info.dli_fname) return nullptr;
  void* torch = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (!torch) return nullptr;
  // With a handle, dlsym searches the library and then its dependencies.
  auto fn = reinterpret_cast<SetFn>(dlsym(torch, "omp_set_num_threads"));
  dlclose(torch);  // NOLOAD only added a reference; the library stays loaded
  return fn;
}

}  // namespace

void SetCallerThreads(int n) {
  static const SetFn omp_set_num_threads = FindOmpSetNumThreads();
  if (n < 1) n = 1;
  // Let libtorch run its once-per-thread init first (it adopts the process-wide value), so that
  // it cannot later overwrite the count set here.
  at::get_num_threads();
  if (omp_set_num_threads) {
    omp_set_num_threads(n);
  } else {
    at::set_num_threads(n);
  }
}

int CallerThreads() { return at::get_num_threads(); }

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

}  // namespace film
