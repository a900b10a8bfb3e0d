// libtorch's CPU allocator becomes the addon's cache (cpu_allocator.h), so that its tensors and
// ours share one pool of blocks and one limit.
#include "torch_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <mutex>

#include "cpu_allocator.h"

// c10::Allocator's interface: up to 2.2 (Debian 12's 1.13) allocate() is const; 2.3 made it non-const
// and added the pure virtual copy_data() (checked against Debian 13's 2.6). A libtorch of another
// major version may have moved again, so the adapter is built for the versions known here only
// (elsewhere libtorch keeps its own allocator, and only the addon's tensors use the cache).
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 3)
#define FILM_TORCH_ALLOCATOR 1
#define FILM_ALLOCATE_CONST const
#elif TORCH_VERSION_MAJOR == 2
#define FILM_TORCH_ALLOCATOR 1
#define FILM_ALLOCATE_CONST
#define FILM_ALLOCATOR_COPY_DATA 1
#endif

namespace film {
#ifdef FILM_TORCH_ALLOCATOR
namespace {

// Installed once, when the addon loads: c10 frees a raw_allocate()d block through the raw_deleter()
// of the allocator current at the time of the free, so an allocator swapped in after libtorch has
// run would be handed blocks it never made. Those (libtorch's static initializers', say) go back
// to the allocator that was current before: the cache's foreign deleter.
class CacheAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) FILM_ALLOCATE_CONST override {
    // no block for no bytes, as libtorch's default allocator
    void* data = n ? AllocateCpu(n) : nullptr;
    // context == data, as raw_allocate() (used by oneDNN through ideep) requires
    return {data, data, &FreeCpu, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &FreeCpu; }
#ifdef FILM_ALLOCATOR_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#endif
};

CacheAllocator* installed = nullptr;

}  // namespace
#endif

void InstallTorchAllocator() {
#ifdef FILM_TORCH_ALLOCATOR
  static std::once_flag once;
  std::call_once(once, [] {
    InstallCpuCache();
    c10::Allocator* previous = c10::GetCPUAllocator();
    SetForeignDeleter(previous ? previous->raw_deleter() : nullptr);
    installed = new CacheAllocator();  // never destroyed: its blocks may be freed until the process ends
    c10::SetCPUAllocator(installed, /*priority=*/10);
  });
#endif
}

CpuCacheProbe ProbeTorchAllocator() {
  CpuCacheProbe probe;
#ifdef FILM_TORCH_ALLOCATOR
  c10::Allocator* current = c10::GetCPUAllocator();
  if (!installed || current != installed) return probe;
  probe.installed = true;
  // a block of libtorch's default allocator, freed through the current one (as c10's raw_deallocate
  // frees a block made before an allocator was installed)
  current->raw_deallocate(c10::GetDefaultCPUAllocator()->raw_allocate(4096));
#endif
  return probe;
}

}  // namespace film
