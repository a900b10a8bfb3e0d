#include "idle_release.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>

#include "backend.h"
#include "cpu_allocator.h"
#include "executor.h"

namespace film {
namespace {
std::atomic<bool> pending{false};
std::atomic<uint64_t> releases{0};
}  // namespace

size_t ReleaseMemoryNow() {
  size_t freed = 0;
  try {
    freed = ReleaseCpuCache();
#if defined(__GLIBC__)
    // glibc keeps freed heap pages mapped (its mmap threshold grows to 32 MiB after the first
    // large free, so weights end up on the heap); this returns them, in every thread's arena.
    malloc_trim(0);
#endif
    backend::ReleaseCachedMemory();
  } catch (...) {
    // Best effort: memory that stays cached is reused by the next run.
  }
  return freed;
}

void ReleaseWhenIdle() {
  if (pending.exchange(true)) return;
  Executor::Get().WhenIdle([] {
    pending = false;
    ReleaseMemoryNow();
    ++releases;
  });
}

uint64_t IdleReleases() { return releases.load(); }

}  // namespace film
