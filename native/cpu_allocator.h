// A caching CPU allocator for libtorch. Large activations (hundreds of MB at 720p) otherwise go
// to mmap and back on every op, and the page faults cost a quarter of the CPU time. Blocks of
// 1 MiB or more are kept after free and reused, up to a cap.
#pragma once

#include <cstddef>

namespace film {

// Installs the allocator once per process (FILM_FEATURES_CPU_CACHE_MB caps the cache; 0 turns it off).
void InstallCachingCpuAllocator();

// False where this libtorch's allocator interface is not one the cache is built for (see the .cc).
bool CpuCacheCompiledIn();

struct CpuCacheState {
  size_t limit;   // 0: no cache
  size_t cached;  // bytes held for reuse now
};
CpuCacheState GetCpuCacheState();

// Frees the cached blocks not in use; returns how many bytes were released.
size_t ReleaseCpuCache();

}  // namespace film
