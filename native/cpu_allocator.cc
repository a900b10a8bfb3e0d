#include "cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
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

  size_t cap() const { return cap_; }
  size_t cached() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  static CachingCpuAllocator* instance;

 private:
  static void Release(void* data) {
    char* base = static_cast<char*>(data) - kAlignment;
    instance->Put(base, *reinterpret_cast<size_t*>(base));
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
        return;
      }
    }
    std::free(base);
  }

  const size_t cap_;
  mutable std::mutex mutex_;
  mutable std::multimap<size_t, char*> free_;
  mutable size_t cached_ = 0;
};

CachingCpuAllocator* CachingCpuAllocator::instance = nullptr;

// The container's memory limit: cgroup v2's memory.max, else v1's memory.limit_in_bytes; 0 if none.
// (A v1 "no limit" is a huge number; the min() below makes it harmless.)
// FILM_FEATURES_CGROUP_ROOT stands in for /sys/fs/cgroup (tests).
size_t CgroupLimit() {
  const char* env = std::getenv("FILM_FEATURES_CGROUP_ROOT");
  const std::string root = env && *env ? env : "/sys/fs/cgroup";
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

// A quarter of what the process may use (RAM, or the cgroup's limit when lower), at most 8 GiB.
size_t DefaultCap() {
  const char* mb = std::getenv("FILM_FEATURES_CPU_CACHE_MB");
  if (mb && *mb) return std::strtoull(mb, nullptr, 10) << 20;
  size_t memory = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (const size_t limit = CgroupLimit()) memory = std::min(memory, limit);
  return std::min(memory / 4, size_t{8} << 30);
}

}  // namespace
#endif

void InstallCachingCpuAllocator() {
#ifdef FILM_CPU_CACHE
  static std::once_flag once;
  std::call_once(once, [] {
    const size_t cap = DefaultCap();
    if (cap == 0) return;
    // Never destroyed: tensors it allocated may be freed at any point until the process ends.
    CachingCpuAllocator::instance = new CachingCpuAllocator(cap);
    c10::SetCPUAllocator(CachingCpuAllocator::instance, /*priority=*/10);
  });
#endif
}

size_t ReleaseCpuCache() {
#ifdef FILM_CPU_CACHE
  return CachingCpuAllocator::instance ? CachingCpuAllocator::instance->Clear() : 0;
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
  if (CachingCpuAllocator::instance) {
    return {CachingCpuAllocator::instance->cap(), CachingCpuAllocator::instance->cached()};
  }
#endif
  return {0, 0};
}

}  // namespace film
