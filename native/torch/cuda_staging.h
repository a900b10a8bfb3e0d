// Host <-> CUDA copies through small, reused pinned buffers. Compiled only with FILM_WITH_CUDA.
//
// Why: PyTorch's caching host allocator rounds each pinned block up to a power of two and never
// gives it back, so pinned outputs handed to JS (1.34 GB per 1920x1088 frame) pinned about 2 GB a
// frame until the GC ran. Here inputs and outputs stay in pageable memory (outputs come from the
// ordinary CPU allocator, sized exactly, which V8 is told about), and only the staging buffers are
// pinned: two chunks of kStagingChunkBytes per run in flight, at most kMaxStagingSets sets per
// device, so pinned memory never exceeds 2 * 8 MiB * 4 = 64 MiB per device. Chunks alternate, so
// the DMA of one overlaps the memcpy of the other.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstddef>
#include <memory>
#include <vector>

namespace film {
namespace cuda {

constexpr size_t kStagingChunkBytes = size_t{8} << 20;
constexpr int kMaxStagingSets = 4;

struct StagingSet;

// One run's lease on a staging set of `device` (waits while all its sets are leased). Uploads and
// downloads go on the device's current stream.
class Staging {
 public:
  explicit Staging(c10::Device device);
  ~Staging();
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // Contiguous float32 CPU tensors to new tensors on the device; returns before the copies finish
  // (stream-ordered, so kernels queued after them see the data).
  std::vector<at::Tensor> Upload(const std::vector<at::Tensor>& host);
  // Device tensors to new contiguous pageable CPU tensors of the same dtype; returns when done.
  std::vector<at::Tensor> Download(const std::vector<at::Tensor>& on_device);

 private:
  // Waits until the DMA that last used chunk b is done.
  void WaitChunk(int b);

  c10::Device device_;
  std::unique_ptr<StagingSet> set_;
  bool in_flight_[2] = {false, false};
};

// Frees idle staging sets and the caching host allocator's unused pinned blocks. Returns the staging
// bytes freed.
size_t ReleasePinnedMemory();

}  // namespace cuda
}  // namespace film
