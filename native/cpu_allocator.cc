#include "cpu_allocator.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

// AddressSanitizer: a block kept for reuse is poisoned while it sits in the cache (and a block's
// tail past what was asked for, while in use), so that a use-after-free of a cached block is still
// reported, as it would be without the cache.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FILM_CACHE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FILM_CACHE_ASAN)
#define FILM_CACHE_ASAN 1
#endif
#ifdef FILM_CACHE_ASAN
#include <sanitizer/asan_interface.h>
#define FILM_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FILM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define FILM_POISON(p, n) ((void)(p), (void)(n))
#define FILM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace film {
namespace {

constexpr size_t kMinCached = size_t{1} << 20;
constexpr size_t kAlignment = 64;  // as libtorch's default allocator
// Blocks from here up are glibc's own mappings (its mmap threshold tops out at 32 MiB).
constexpr size_t kMinRoom = size_t{32} << 20;

// Size classes 1/8 of a power of two apart: at most 12.5% waste, and frames of one size reuse.
size_t SizeClass(size_t n) {
  if (n < kMinCached) return n;
  size_t top = kMinCached;
  while (top * 2 <= n) top *= 2;
  const size_t step = top / 8;
  return (n + step - 1) / step * step;
}

// One per process, made when the addon loads and never destroyed: blocks it made may be freed at
// any point until the process ends. Turning the cache on or off is only a change of limit; with 0
// every block is freed when its tensor is.
//
// Each block it made is in live_ with its size class, so Free() never reads memory to size a
// block. A pointer it did not make is handed to the foreign deleter (the libtorch backend sets it to
// the allocator libtorch had before, for blocks made before ours was installed), or kept.
class BlockCache {
 public:
  explicit BlockCache(size_t cap) : cap_(cap) {}

  // Sets the limit and frees cached blocks, largest first, until at most cap bytes are held;
  // returns the bytes freed.
  size_t SetCap(size_t cap) { return Trim(cap, true); }

  // Frees every cached block, the limit unchanged; returns the bytes freed.
  size_t Clear() { return Trim(0, false); }

  void* Allocate(size_t n) {
    if (n == 0) return nullptr;
    const size_t size = SizeClass(n);
    char* data = size >= kMinCached ? Take(size) : nullptr;
    if (!data) {
      if (size >= kMinRoom) MakeRoom(size);
      void* fresh = nullptr;
      if (posix_memalign(&fresh, kAlignment, size) != 0 || !fresh) throw std::bad_alloc();
      data = static_cast<char*>(fresh);
      try {
        Register(data, size);
      } catch (...) {  // the registry could not grow: the block is not handed out, so not kept
        std::free(data);
        throw;
      }
    }
    FILM_UNPOISON(data, n);
    FILM_POISON(data + n, size - n);
    return data;
  }

  void Free(void* p) {
    char* data = static_cast<char*>(p);
    size_t size = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = live_.find(data);
      if (it != live_.end()) {
        size = it->second;
        if (size >= kMinCached && cached_ + size <= cap_) {
          FILM_POISON(data, size);
          free_.emplace(size, Cached{data, ++stamp_});
          cached_ += size;
          high_ = std::max(high_, cached_);
          return;
        }
        live_.erase(it);
      }
    }
    if (size == 0) {
      // not ours: freed as whoever made it frees, or kept rather than freed the wrong way
      if (ForeignDeleter deleter = foreign_deleter_.load()) deleter(data);
      return;
    }
    FILM_UNPOISON(data, size);
    std::free(data);
  }

  void SetForeignDeleter(ForeignDeleter deleter) { foreign_deleter_ = deleter; }

  CpuCacheState State() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cap_, cached_, high_};
  }

  // Tests only (ProbeCpuCache): whether p is a block this allocator made, in use or cached.
  bool Made(const void* p) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.count(const_cast<void*>(p)) > 0;
  }


 private:
  // Frees cached blocks, largest first, until at most keep bytes are held (the frees outside the lock).
  size_t Trim(size_t keep, bool set_cap) {
    std::vector<std::pair<char*, size_t>> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (set_cap) cap_ = keep;
      while (cached_ > keep && !free_.empty()) drop.push_back(Pop(std::prev(free_.end())));
    }
    return FreeAll(drop);
  }

  // A new block of `size` (kMinRoom or more) is about to be made: frees cached blocks, the most
  // recently freed first, until that many bytes are freed or none are left, so that a run of new
  // sizes does not hold the old ones beside it (a 1080p interpolation held 10.8 GiB, not 6.8).
  // Smaller new blocks make no room: most would come from the C heap, and freeing blocks for them
  // only scattered it (test 65's recursion RSS check saw it). Most recent first: a
  // run that repeats asks for each block again about one run after it asked before, so the block
  // asked for last is the one needed last (Belady's choice for a loop), and the blocks a repeated
  // run takes early stay.
  void MakeRoom(size_t size) {
    std::vector<std::pair<char*, size_t>> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      size_t freed = 0;
      while (freed < size) {
        auto newest = free_.end();
        for (auto it = free_.begin(); it != free_.end(); ++it) {
          if (newest == free_.end() || it->second.stamp > newest->second.stamp) newest = it;
        }
        if (newest == free_.end()) break;
        drop.push_back(Pop(newest));
        freed += drop.back().second;
      }
    }
    FreeAll(drop);
  }

  void Register(char* data, size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.emplace(data, size);
  }

  // The most recently freed block of the size class (equal keys keep their insertion order): the
  // one likeliest still in the CPU's caches.
  char* Take(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto range = free_.equal_range(size);
    if (range.first == range.second) return nullptr;
    const auto it = std::prev(range.second);
    char* data = it->second.data;
    free_.erase(it);
    cached_ -= size;
    return data;  // still in live_: it stayed ours while cached
  }

  struct Cached {
    char* data;
    uint64_t stamp;  // when it was freed: a count of frees into the cache
  };

  // Under the lock: a cached block, out of the cache and of live_.
  std::pair<char*, size_t> Pop(std::multimap<size_t, Cached>::iterator it) {
    const std::pair<char*, size_t> block{it->second.data, it->first};
    cached_ -= it->first;
    free_.erase(it);
    live_.erase(block.first);
    return block;
  }

  // Outside the lock: frees blocks taken out of the cache; returns their bytes.
  static size_t FreeAll(const std::vector<std::pair<char*, size_t>>& blocks) {
    size_t bytes = 0;
    for (const auto& [data, size] : blocks) {
      FILM_UNPOISON(data, size);
      std::free(data);
      bytes += size;
    }
    return bytes;
  }

  size_t cap_;
  std::atomic<ForeignDeleter> foreign_deleter_{nullptr};
  mutable std::mutex mutex_;
  std::unordered_map<void*, size_t> live_;   // every block made and not yet freed
  std::multimap<size_t, Cached> free_;       // the cached ones, by size class
  uint64_t stamp_ = 0;
  size_t cached_ = 0;
  size_t high_ = 0;
};

BlockCache* cache = nullptr;  // set once, by InstallCpuCache

// The container's memory limit: cgroup v2's memory.max, else v1's memory.limit_in_bytes; 0 if none.
// (A v1 "no limit" is a huge number; the min() below makes it harmless.)
size_t CgroupLimit(const std::string& root) {
  for (const char* file : {"/memory.max", "/memory/memory.limit_in_bytes"}) {
    std::ifstream in(root + file);
    std::string text;
    if (!(in >> text) || text == "max") continue;
    char* end = nullptr;
    const unsigned long long limit = std::strtoull(text.c_str(), &end, 10);
    if (end != text.c_str() && limit > 0) return static_cast<size_t>(limit);
  }
  return 0;
}

size_t PhysicalMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
}

size_t initial_cap = 0;
std::string env_warning;  // set once, at install; handed out once (TakeCpuCacheEnvWarning)
std::atomic<bool> env_warning_taken{false};

}  // namespace

size_t DefaultCpuCacheLimit(const std::string& cgroup_root) {
  size_t memory = PhysicalMemory();
  if (const size_t limit = CgroupLimit(cgroup_root)) memory = std::min(memory, limit);
  return std::min(memory / 4, size_t{8} << 30);
}

size_t ParseCpuCacheMb(const std::string& value, size_t fallback, size_t memory, std::string* warning) {
  constexpr const char* kName = "FILM_FEATURES_CPU_CACHE_MB";
  std::string shown;  // the value as the warning quotes it: printable, at most 40 characters
  for (char c : value.substr(0, 40)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (value.size() > 40) shown += "...";
  const size_t most_mb = memory ? memory >> 20 : (SIZE_MAX >> 20);
  size_t mb = 0;
  bool capped = false;
  bool digits = !value.empty();
  for (char c : value) {
    if (c < '0' || c > '9') {
      digits = false;
      break;
    }
    if (!capped) mb = mb * 10 + static_cast<size_t>(c - '0');  // mb <= most_mb < 2^44: no overflow
    if (mb > most_mb) capped = true;
  }
  if (!digits) {
    *warning = std::string(kName) + "=\"" + shown + "\" is not a whole number of MiB (0 or more): ignored, and the default limit of the CPU block cache (" +
               std::to_string(fallback >> 20) + " MiB) is used";
    return fallback;
  }
  if (capped) {
    *warning = std::string(kName) + "=\"" + shown + "\" is more than this machine's memory: the CPU block cache's limit is " +
               std::to_string(most_mb) + " MiB";
    return most_mb << 20;
  }
  warning->clear();
  return mb << 20;
}

void InstallCpuCache() {
  static std::once_flag once;
  std::call_once(once, [] {
    const size_t fallback = DefaultCpuCacheLimit("/sys/fs/cgroup");
    const char* mb = std::getenv("FILM_FEATURES_CPU_CACHE_MB");
    // empty is unset, as for the package's other variables
    initial_cap = mb && *mb ? ParseCpuCacheMb(mb, fallback, PhysicalMemory(), &env_warning) : fallback;
    cache = new BlockCache(initial_cap);
  });
}

void* AllocateCpu(size_t bytes) {
  InstallCpuCache();
  return cache->Allocate(bytes);
}

void FreeCpu(void* data) {
  if (data) cache->Free(data);
}

void SetForeignDeleter(ForeignDeleter deleter) {
  InstallCpuCache();
  cache->SetForeignDeleter(deleter);
}

std::string TakeCpuCacheEnvWarning() {
  if (!env_warning.empty() && !env_warning_taken.exchange(true)) return env_warning;
  return {};
}

size_t InitialCpuCacheLimit() { return initial_cap; }

CpuCacheState SetCpuCacheLimit(size_t bytes) {
  if (cache) cache->SetCap(bytes);
  return GetCpuCacheState();
}

size_t ReleaseCpuCache() { return cache ? cache->Clear() : 0; }

CpuCacheState GetCpuCacheState() { return cache ? cache->State() : CpuCacheState{0, 0, 0}; }

bool CpuCacheMade(const void* data) { return cache && cache->Made(data); }

CpuCacheProbe ProbeCpuCache(const CpuCacheProbe& backend) {
  CpuCacheProbe probe = backend;
#ifdef FILM_CACHE_ASAN
  probe.asan = true;
#endif
  if (!probe.installed || !cache) return probe;
  void* block = AllocateCpu(kMinCached);
  FreeCpu(block);
  probe.cached = cache->Made(block);  // still ours: kept for reuse
#ifdef FILM_CACHE_ASAN
  probe.poisoned = probe.cached && __asan_region_is_poisoned(block, kMinCached) == block;
#endif
  void* again = AllocateCpu(kMinCached);
  probe.reused = again == block;
#ifdef FILM_CACHE_ASAN
  probe.unpoisoned = __asan_region_is_poisoned(again, kMinCached) == nullptr;
#endif
  FreeCpu(again);
  return probe;
}

}  // namespace film
