// A caching CPU allocator for libtorch. Large activations (hundreds of MB at 720p) otherwise go
// to mmap and back on every op, and the page faults cost a quarter of the CPU time. Blocks of
// 1 MiB or more are kept after free and reused, up to a cap.
#pragma once

#include <cstddef>
#include <string>

namespace film {

// Installs the allocator once per process, with the default limit: FILM_FEATURES_CPU_CACHE_MB
// (read once, here; 0 turns the cache off), else DefaultCpuCacheLimit("/sys/fs/cgroup").
void InstallCachingCpuAllocator();

// False where this libtorch's allocator interface is not one the cache is built for (see the .cc).
bool CpuCacheCompiledIn();

struct CpuCacheState {
  size_t limit;   // 0: no cache
  size_t cached;  // bytes held for reuse now
  size_t high;    // the most it has held
};
CpuCacheState GetCpuCacheState();

// Sets the limit (FeatureExtractor.cache({ memory })): blocks past it are freed now, and with 0 every
// block is freed when its tensor is. A limit set on a process that started without the cache
// installs it then. Returns the state after.
CpuCacheState SetCpuCacheLimit(size_t bytes);
// The limit the process started with.
size_t InitialCpuCacheLimit();

// A quarter of what the process may use (RAM, or the memory limit of the cgroup mounted at
// cgroup_root when lower), at most 8 GiB; 0 where the cache is not compiled in.
size_t DefaultCpuCacheLimit(const std::string& cgroup_root);

// Frees the cached blocks not in use; returns how many bytes were released.
size_t ReleaseCpuCache();

}  // namespace film
