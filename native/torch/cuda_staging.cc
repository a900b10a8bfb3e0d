#include "cuda_staging.h"

#include <ATen/Parallel.h>
#include <ATen/cuda/CachingHostAllocator.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>

namespace film {
namespace cuda {

// Two pinned chunks and the events that mark when the DMA using each is done.
struct StagingSet {
  explicit StagingSet(c10::DeviceIndex device) : device(device) {
    c10::cuda::CUDAGuard guard(device);
    for (int b = 0; b < 2; ++b) {
      C10_CUDA_CHECK(cudaHostAlloc(&chunk[b], kStagingChunkBytes, cudaHostAllocPortable));
      C10_CUDA_CHECK(cudaEventCreateWithFlags(&done[b], cudaEventDisableTiming));
    }
  }
  ~StagingSet() {
    c10::cuda::CUDAGuard guard(device);
    for (int b = 0; b < 2; ++b) {
      if (done[b]) C10_CUDA_IGNORE_ERROR(cudaEventDestroy(done[b]));
      if (chunk[b]) C10_CUDA_IGNORE_ERROR(cudaFreeHost(chunk[b]));
    }
  }
  c10::DeviceIndex device;
  void* chunk[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
};

namespace {

// The idle sets of each device, and how many exist; at most kMaxStagingSets per device.
class Pool {
 public:
  static Pool& Get() {
    static Pool* pool = new Pool();  // never destroyed: the CUDA runtime may be gone at exit
    return *pool;
  }

  std::unique_ptr<StagingSet> Acquire(c10::DeviceIndex device) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      auto& idle = idle_[device];
      freed_.wait(lock, [&] { return !idle.empty() || count_[device] < kMaxStagingSets; });
      if (!idle.empty()) {
        std::unique_ptr<StagingSet> set = std::move(idle.back());
        idle.pop_back();
        return set;
      }
      ++count_[device];
    }
    try {
      return std::make_unique<StagingSet>(device);
    } catch (...) {
      Forget(device);
      throw;
    }
  }

  void Release(std::unique_ptr<StagingSet> set) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_[set->device].push_back(std::move(set));
    }
    freed_.notify_one();
  }

  size_t Trim() {
    std::vector<std::unique_ptr<StagingSet>> idle;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [device, sets] : idle_) {
        count_[device] -= static_cast<int>(sets.size());
        for (auto& set : sets) idle.push_back(std::move(set));
        sets.clear();
      }
    }
    freed_.notify_all();
    return idle.size() * 2 * kStagingChunkBytes;  // freed as `idle` goes out of scope
  }

 private:
  void Forget(c10::DeviceIndex device) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --count_[device];
    }
    freed_.notify_one();
  }

  std::mutex mutex_;
  std::condition_variable freed_;
  std::map<c10::DeviceIndex, std::vector<std::unique_ptr<StagingSet>>> idle_;
  std::map<c10::DeviceIndex, int> count_;
};

// memcpy on the intra-op threads: one core copies pageable memory slower than PCIe moves it.
void Copy(void* to, const void* from, size_t bytes) {
  constexpr int64_t kGrain = int64_t{1} << 20;
  at::parallel_for(0, static_cast<int64_t>(bytes), kGrain, [&](int64_t begin, int64_t end) {
    std::memcpy(static_cast<char*>(to) + begin, static_cast<const char*>(from) + begin, end - begin);
  });
}

// Each tensor copied to a new contiguous tensor on `device`, 8 MiB at a time: chunk(b, from, to, n)
// moves n bytes through staging chunk b, which alternates 0, 1, 0, ... across all the tensors.
template <typename Fn>
std::vector<at::Tensor> ByChunks(const std::vector<at::Tensor>& tensors, const c10::Device& device, Fn&& chunk) {
  std::vector<at::Tensor> out;
  int k = 0;
  for (const at::Tensor& t : tensors) {
    const at::Tensor src = t.contiguous();
    at::Tensor dst = at::empty(src.sizes(), src.options().device(device));
    const auto* from = static_cast<const char*>(src.data_ptr());
    auto* to = static_cast<char*>(dst.data_ptr());
    const size_t bytes = src.nbytes();
    for (size_t offset = 0; offset < bytes; offset += kStagingChunkBytes) {
      chunk(k++ % 2, from + offset, to + offset, std::min(kStagingChunkBytes, bytes - offset));
    }
    out.push_back(std::move(dst));
  }
  return out;
}

cudaStream_t CurrentStream(const c10::Device& device) {
  return c10::cuda::getCurrentCUDAStream(device.index()).stream();
}

}  // namespace

Staging::Staging(c10::Device device) : device_(device), set_(Pool::Get().Acquire(device.index())) {}

Staging::~Staging() {
  // A chunk may still be read by a DMA if a run failed halfway; the next lease must not write it.
  for (int b = 0; b < 2; ++b) {
    if (in_flight_[b]) C10_CUDA_IGNORE_ERROR(cudaEventSynchronize(set_->done[b]));
  }
  Pool::Get().Release(std::move(set_));
}

void Staging::WaitChunk(int b) {
  if (!in_flight_[b]) return;
  C10_CUDA_CHECK(cudaEventSynchronize(set_->done[b]));
  in_flight_[b] = false;
}

std::vector<at::Tensor> Staging::Upload(const std::vector<at::Tensor>& host) {
  const cudaStream_t stream = CurrentStream(device_);
  return ByChunks(host, device_, [&](int b, const char* from, char* to, size_t n) {
    WaitChunk(b);  // the DMA from two chunks ago has read it
    Copy(set_->chunk[b], from, n);
    C10_CUDA_CHECK(cudaMemcpyAsync(to, set_->chunk[b], n, cudaMemcpyHostToDevice, stream));
    C10_CUDA_CHECK(cudaEventRecord(set_->done[b], stream));
    in_flight_[b] = true;
  });
}

std::vector<at::Tensor> Staging::Download(const std::vector<at::Tensor>& on_device) {
  const cudaStream_t stream = CurrentStream(device_);
  struct Pending {
    char* to = nullptr;
    size_t bytes = 0;
  } pending[2];
  // Copies chunk b out to its host destination once its DMA is done.
  auto drain = [&](int b) {
    if (!pending[b].to) return;
    WaitChunk(b);
    Copy(pending[b].to, set_->chunk[b], pending[b].bytes);
    pending[b] = Pending();
  };
  // on_device keeps each source alive; its memory is only reused by work queued after ours.
  std::vector<at::Tensor> out =
      ByChunks(on_device, c10::Device(c10::kCPU), [&](int b, const char* from, char* to, size_t n) {
        drain(b);
        C10_CUDA_CHECK(cudaMemcpyAsync(set_->chunk[b], from, n, cudaMemcpyDeviceToHost, stream));
        C10_CUDA_CHECK(cudaEventRecord(set_->done[b], stream));
        in_flight_[b] = true;
        pending[b] = Pending{to, n};
        drain(1 - b);  // the previous chunk, while this one is on its way
      });
  drain(0);
  drain(1);
  return out;
}

size_t ReleasePinnedMemory() {
  const size_t freed = Pool::Get().Trim();
  at::cuda::CachingHostAllocator_emptyCache();
  return freed;
}

}  // namespace cuda
}  // namespace film
