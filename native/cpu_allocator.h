// The addon's CPU allocator, with a block cache. Large activations (hundreds of MB at 720p)
// otherwise go to mmap and back on every run, and the page faults cost a quarter of the CPU time.
// Blocks of 1 MiB or more are kept after free and reused, up to a limit; a block of 32 MiB or more
// that has to be made anew first frees as many cached bytes (sizes a run no longer asks for are not
// kept beside it). Every film::Tensor (tensor.h) comes from here; in the full build libtorch's CPU allocator does too
// (torch/torch_allocator.cc). It is made once, when the addon loads, and stays: a limit of 0 turns
// caching off (every block is freed when its tensor is).
#pragma once

#include <cstddef>
#include <string>

namespace film {

// Makes the cache once per process, with the default limit: FILM_FEATURES_CPU_CACHE_MB (read once,
// here; 0 turns the cache off; see ParseCpuCacheMb), else DefaultCpuCacheLimit("/sys/fs/cgroup").
void InstallCpuCache();

// bytes of memory, 64-byte aligned (nullptr for 0); throws std::bad_alloc.
void* AllocateCpu(size_t bytes);
// Frees what AllocateCpu returned. A pointer the cache did not make goes to the foreign deleter.
void FreeCpu(void* data);

using ForeignDeleter = void (*)(void*);
// Who frees blocks the cache did not make (libtorch's allocator before ours, in the full build).
void SetForeignDeleter(ForeignDeleter deleter);
// Whether data is a block the cache made, in use or cached.
bool CpuCacheMade(const void* data);

// FILM_FEATURES_CPU_CACHE_MB's value: a whole number of MiB (digits only), at most memory bytes
// (0: unknown). Returns the limit in bytes: the value's, capped at memory, or fallback where the value
// is not such a number; warning says why when the value was not taken as it is (else it is cleared).
size_t ParseCpuCacheMb(const std::string& value, size_t fallback, size_t memory, std::string* warning);

// Once per process, the first call: what was wrong with FILM_FEATURES_CPU_CACHE_MB, for a process
// warning (the addon's load emits it); empty when nothing was, and on every later call.
std::string TakeCpuCacheEnvWarning();

struct CpuCacheState {
  size_t limit;   // 0: no cache
  size_t cached;  // bytes held for reuse now
  size_t high;    // the most it has held
};
CpuCacheState GetCpuCacheState();

// Sets the limit (FeatureExtractor.cache({ memory })): blocks past it are freed now, and with 0 every
// block is freed when its tensor is. Only the limit changes: the allocator stays. Returns the state after.
CpuCacheState SetCpuCacheLimit(size_t bytes);
// The limit the process started with.
size_t InitialCpuCacheLimit();

// A quarter of what the process may use (RAM, or the memory limit of the cgroup mounted at
// cgroup_root when lower), at most 8 GiB.
size_t DefaultCpuCacheLimit(const std::string& cgroup_root);

// Frees the cached blocks not in use; returns how many bytes were released.
size_t ReleaseCpuCache();

// Tests only (binding._internal.probeCpuCache): frees a 1 MiB block and allocates one again, and
// says what happened; `backend` says whether the cache is the allocator every tensor uses (the
// full build checks libtorch's, torch/torch_allocator.cc).
struct CpuCacheProbe {
  bool asan = false;        // this build has AddressSanitizer
  bool installed = false;   // the cache is the CPU allocator (libtorch's too, in the full build)
  bool cached = false;      // the freed block was kept (the limit allowing)
  bool poisoned = false;    // ASan: the whole block was poisoned while cached
  bool reused = false;      // the next allocation of that size got it back
  bool unpoisoned = false;  // ASan: and it was no longer poisoned
};
CpuCacheProbe ProbeCpuCache(const CpuCacheProbe& backend);

}  // namespace film
