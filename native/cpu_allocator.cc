#include "cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>

// c10::Allocator's interface: up to 2.2 (Debian 12's 1.13) allocate() is const; 2.3 made it non-const
// and added the pure virtual copy_data() (checked against Debian 13's 2.6). A libtorch of another
// major version may have moved again, so the cache is built for the versions known here only.
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 3)
#define FILM_CPU_CACHE 1
#define FILM_ALLOCATE_CONST const
#elif TORCH_VERSION_MAJOR == 2
#define FILM_CPU_CACHE 1
#define FILM_ALLOCATE_CONST
#define FILM_ALLOCATOR_COPY_DATA 1
#endif

namespace film {
#ifdef FILM_CPU_CACHE
namespace {

constexpr size_t kMinCached = size_t{1} << 20;
constexpr size_t kAlignment = 64;  // as libtorch's default allocator; also the header's size

// Size classes 1/8 of a power of two apart: at most 12.5% waste, and frames of one size reuse.
size_t SizeClass(size_t n) {
  if (n < kMinCached) return n;
  size_t top = kMinCached;
  while (top * 2 <= n) top *= 2;
  const size_t step = top / 8;
  return (n + step - 1) / step * step;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(size_t cap) : cap_(cap) {}

  // Frees cached blocks, largest first, until at most cap bytes are held; returns the bytes freed.
  size_t SetCap(size_t cap) {
    std::lock_guard<std::mutex> lock(mutex_);
    cap_ = cap;
    size_t released = 0;
    while (cached_ > cap_ && !free_.empty()) {
      auto last = std::prev(free_.end());
      std::free(last->second);
      cached_ -= last->first;
      released += last->first;
      free_.erase(last);
    }
    return released;
  }

  // Every block carries its size in a header, small or not: raw_deallocate() hands the deleter a
  // bare pointer, so the deleter must be able to tell any block's size.
  c10::DataPtr allocate(size_t n) FILM_ALLOCATE_CONST override {
    const size_t size = SizeClass(n);
    char* base = size >= kMinCached ? Take(size) : nullptr;
    if (!base) {
      void* fresh = nullptr;
      if (posix_memalign(&fresh, kAlignment, size + kAlignment) != 0) throw std::bad_alloc();
      base = static_cast<char*>(fresh);
      *reinterpret_cast<size_t*>(base) = size;
    }
    void* data = base + kAlignment;
    // context == data, as raw_allocate() (used by oneDNN through ideep) requires
    return {data, data, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

#ifdef FILM_ALLOCATOR_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif

  size_t Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t released = cached_;
    for (auto& entry : free_) std::free(entry.second);
    free_.clear();
    cached_ = 0;
    return released;
  }

  CpuCacheState State() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cap_, cached_, high_};
  }

  static std::atomic<CachingCpuAllocator*> instance;

 private:
  static void Release(void* data) {
    char* base = static_cast<char*>(data) - kAlignment;
    instance.load()->Put(base, *reinterpret_cast<size_t*>(base));
  }

  char* Take(size_t size) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it == free_.end()) return nullptr;
    char* base = it->second;
    free_.erase(it);
    cached_ -= size;
    return base;
  }

  void Put(char* base, size_t size) {
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + size <= cap_) {
        free_.emplace(size, base);
        cached_ += size;
        high_ = std::max(high_, cached_);
        return;
      }
    }
    std::free(base);
  }

  size_t cap_;
  mutable std::mutex mutex_;
  mutable std::multimap<size_t, char*> free_;
  mutable size_t cached_ = 0;
  size_t high_ = 0;
};

std::atomic<CachingCpuAllocator*> CachingCpuAllocator::instance{nullptr};

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

size_t initial_cap = 0;
std::mutex install_mutex;

// Never destroyed: tensors it allocated may be freed at any point until the process ends.
void Install(size_t cap) {
  CachingCpuAllocator::instance = new CachingCpuAllocator(cap);
  c10::SetCPUAllocator(CachingCpuAllocator::instance.load(), /*priority=*/10);
}

}  // namespace
#endif

size_t DefaultCpuCacheLimit(const std::string& cgroup_root) {
#ifdef FILM_CPU_CACHE
  size_t memory = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (const size_t limit = CgroupLimit(cgroup_root)) memory = std::min(memory, limit);
  return std::min(memory / 4, size_t{8} << 30);
#else
  (void)cgroup_root;
  return 0;  // no cache in this build
#endif
}

void InstallCachingCpuAllocator() {
#ifdef FILM_CPU_CACHE
  static std::once_flag once;
  std::call_once(once, [] {
    const char* mb = std::getenv("FILM_FEATURES_CPU_CACHE_MB");
    initial_cap = mb && *mb ? std::strtoull(mb, nullptr, 10) << 20 : DefaultCpuCacheLimit("/sys/fs/cgroup");
    std::lock_guard<std::mutex> lock(install_mutex);
    if (initial_cap > 0) Install(initial_cap);
  });
#endif
}

size_t InitialCpuCacheLimit() {
#ifdef FILM_CPU_CACHE
  return initial_cap;
#else
  return 0;
#endif
}

CpuCacheState SetCpuCacheLimit(size_t bytes) {
#ifdef FILM_CPU_CACHE
  {
    std::lock_guard<std::mutex> lock(install_mutex);
    if (!CachingCpuAllocator::instance) {
      if (bytes == 0) return {0, 0, 0};
      Install(bytes);
    }
  }
  CachingCpuAllocator::instance.load()->SetCap(bytes);
#else
  (void)bytes;
#endif
  return GetCpuCacheState();
}

size_t ReleaseCpuCache() {
#ifdef FILM_CPU_CACHE
  CachingCpuAllocator* cache = CachingCpuAllocator::instance;
  return cache ? cache->Clear() : 0;
#else
  return 0;
#endif
}

}  // namespace film

namespace film {

bool CpuCacheCompiledIn() {
#ifdef FILM_CPU_CACHE
  return true;
#else
  return false;
#endif
}

CpuCacheState GetCpuCacheState() {
#ifdef FILM_CPU_CACHE
  if (CachingCpuAllocator* cache = CachingCpuAllocator::instance) return cache->State();
#endif
  return {0, 0, 0};
}

}  // namespace film
