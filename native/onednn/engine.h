// FILM's extractor run with oneDNN primitives: each 3x3 convolution fused with its bias and
// LeakyReLU(0.2), activations in the layout oneDNN picks, average pooling in that layout, and each
// stage's output reordered once into its channel range of the output level (the concatenation),
// NCHW or NHWC.
// In float32, convolutions of 16 channels or more run by Winograd's F(2x2, 3x3) (winograd.h).
// Only compiled where CMake found oneDNN (FILM_WITH_ONEDNN). No libtorch: the core build runs it alone.
#pragma once

#include "../model.h"
#include "../tensor.h"

#include <array>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace film {
namespace onednn {

// kBf16: weights and activations in bfloat16 (weights rounded once, here), accumulation, bias and
// outputs in float32. Only where HasBf16().
enum class Precision { kF32, kBf16 };

// The outputs' layout: kNhwc spares the transposition from the NHWC activations into NCHW.
enum class Layout { kNchw, kNhwc };

// One row of 2x2 average pooling (avg_pool2d's sum, then * 0.25), float32 NHWC: a and b are the two
// source rows, their pixels `pixel` floats apart (a channel range of a wider tensor); writes w
// pixels of `channels` floats, dense, at dst.
void PoolRow(const float* a, const float* b, int64_t pixel, int64_t channels, int64_t w, float* dst);

class Engine {
 public:
  // stages[j] = the two convolutions of stage j. Weights are copied into oneDNN's layout here, once.
  // Throws std::invalid_argument for kBf16 where !HasBf16().
  explicit Engine(const std::vector<std::array<ConvWeights, 2>>& stages, Precision precision = Precision::kF32);
  ~Engine();

  // pyramid: one float32 contiguous NCHW tensor [N, 3, H >> i, W >> i] per level, finest first.
  // Returns one float32 contiguous tensor per level, [N, C, H, W] or, for kNhwc, [N, H, W, C].
  // Runs on the calling thread's OpenMP threads; primitives are made once per (batch, size, levels,
  // threads, layout). Thread-safe.
  std::vector<Tensor> Run(const std::vector<Tensor>& pyramid, Layout layout = Layout::kNchw) const;

  // The instruction set oneDNN's kernels use on this machine, e.g. "avx2" or "avx512_core".
  static std::string Isa();
  // The oneDNN library running it (in the full build, the one libtorch loads), e.g. "2.6.3".
  static std::string Version();
  // Whether oneDNN's ISA here runs bf16 convolutions natively (avx512_core_bf16, avx512_core_amx, ...).
  static bool HasBf16();

  struct Plan;
  struct Prepared;

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t, size_t, int, Layout>;  // N, H, W, levels, threads, layout
  std::shared_ptr<const Plan> PlanFor(const std::vector<Tensor>& pyramid, Layout layout) const;

  std::unique_ptr<Prepared> prepared_;
  // The most recently used plans, newest last; a service that sees many sizes keeps a bounded set.
  static constexpr size_t kMaxPlans = 16;
  mutable std::mutex mutex_;
  mutable std::list<std::pair<Key, std::shared_ptr<const Plan>>> plans_;
};

}  // namespace onednn
}  // namespace film
