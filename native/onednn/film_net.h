// FILM's whole interpolator (the PyTorch port's Interpolator: dajes/frame-interpolation-pytorch,
// and models/film_net.py, which has its names and shapes) run on the CPU in float32 without
// libtorch: both frames' feature pyramids in one batch, then level by level, coarse to fine, the
// residual flow both ways in one batch, the flows scaled to time t, both frames' images and
// features warped to t, and that level of the fusion decoder. Convolutions are oneDNN's (NHWC),
// 3x3 ones of 16 channels or more by Winograd (winograd.h); pooling, upsampling, warping and
// concatenation are ours.
//
// Memory: every chain of convolutions runs over its level a slab of rows at a time (with the rows
// its padding reaches above and below), so no level's wide inputs are ever whole; features are
// held a part per extractor stage, and a level's are freed once its flow and fusion are done; on
// large frames the finest levels' first-stage parts (or, larger still, whole levels) are made when
// the flow reaches them instead of kept from the start (FilmNetMemory).
// Slabs start on even rows, where Winograd's tiles fall on the whole frame: the result does not
// depend on them.
// Only compiled where CMake found oneDNN (FILM_WITH_ONEDNN); the core build runs it too.
#pragma once

#include "../tensor.h"
#include "engine.h"

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace film {
namespace onednn {

// The network's shape, read off the weights' names and shapes.
struct FilmNetConfig {
  int64_t filters = 0;              // C: the extractor's first width
  int sub_levels = 0;               // S: stages of the extractor's sub-tree
  std::vector<int> flow_convs;      // 3x3 convolutions of each flow predictor, finest level first
  std::vector<int64_t> flow_filters;  // their width (for 0 convolutions: twice the 1x1's)
  int specialized_levels = 0;       // fusion widths are C << min(level, specialized_levels)
  int fusion_levels = 0;            // F: aligned levels the decoder takes (its steps + 1)
  std::vector<int64_t> fusion_filters;  // width of fusion level i, i < F - 1
  // The fewest pyramid levels Run takes: the flow predictors' and the fusion's levels.
  int MinLevels() const;
  // Channels of the cascaded feature pyramid at level i.
  int64_t FeatureWidth(int level) const;
};

// How a run trades time for memory. Defaults pick by the frame's size.
struct FilmNetMemory {
  // Pyramid levels, finest first, whose features are partly made when the flow reaches them
  // rather than at the start: their extractor's first stage runs again, on the level's own image
  // (the other stages' parts are kept: they come from finer image levels and cost far more).
  // -1: the fewest (at most 2) that keep the features held at the start within 1.375 GiB, else 2
  // made whole.
  int recompute = -1;
  // With recompute: make those levels whole again, every stage from its image level up (the
  // finer stages run twice): the least memory, the most time.
  bool whole = false;
  // Rows each slab gives (even); 0: as many as keep a slab (its input and two layers' outputs) near 192 MiB.
  int64_t band = 0;
};

// Milliseconds per stage of one run (Run's `times`).
struct FilmNetTimes {
  double extract = 0;     // image pyramids and both frames' features (made again included)
  double flow = 0;        // the flow predictors' convolutions
  double flow_warp = 0;   // in the flow estimation: upsampling, warping, concatenation
  double align = 0;       // the fusion's inputs: flows scaled to t, images and features warped
  double fusion = 0;      // the decoder: nearest upsampling, convolutions, the output
};

class FilmNet {
 public:
  // weights: float32 tensors by the port's parameter names (extract.extract_sublevels.convs.{j}.{k}.0.*,
  // predict_flow._predictor._convs.{i}.0.*, predict_flow._predictors.{m}._convs.{i}.0.*,
  // fuse.convs.{k}.{0,1,2}.0.*, fuse.output_conv.*). Infers the configuration, checks every shape,
  // and throws std::invalid_argument naming the tensor where the weights are not this network.
  // precision kBf16: Winograd's products in bfloat16 (the tiles rounded after their transform),
  // the first and the resizing convolutions with bfloat16 input and weights, float32 sums and
  // outputs where hand-written steps read them; throws where !Engine::HasBf16().
  explicit FilmNet(const std::map<std::string, Tensor>& weights, Precision precision = Precision::kF32);
  ~FilmNet();

  // x0, x1: float32 NCHW [n, 3, h, w], h and w multiples of 2^(levels - 1); dt: one time per pair;
  // levels: the image pyramid's depth (FILM: 7), at least config().MinLevels(). Returns float32 NCHW
  // [n, 3, h, w], not clamped. Throws std::invalid_argument for inputs it does not take. Runs on the
  // calling thread's OpenMP threads; primitives are made once per (n, h, w, levels, threads, band).
  // Thread-safe. times: where given, each stage's milliseconds.
  Tensor Run(const Tensor& x0, const Tensor& x1, const std::vector<float>& dt, int levels,
             FilmNetTimes* times = nullptr, const FilmNetMemory& memory = FilmNetMemory()) const;

  const FilmNetConfig& config() const { return config_; }
  Precision precision() const { return bf16_ ? Precision::kBf16 : Precision::kF32; }

  struct Conv;
  struct Plan;

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int, int64_t>;  // n, h, w, levels, threads, band
  std::shared_ptr<const Plan> PlanFor(int64_t n, int64_t h, int64_t w, int levels, int64_t band) const;
  // The FilmNetMemory that recompute -1 stands for, for this batch and size.
  FilmNetMemory Remade(int64_t n, int64_t h, int64_t w, int levels) const;
  // The predictor of flow level i.
  const std::vector<std::unique_ptr<Conv>>& PredictorOf(int level) const;
  static std::array<std::unique_ptr<Conv>, 4> ResizePhases(const Conv& conv);

  FilmNetConfig config_;
  bool bf16_ = false;
  std::vector<std::array<std::unique_ptr<Conv>, 2>> extract_;   // [k]: stage k's two 3x3 (stage 0's first on 4 channels)
  std::vector<std::vector<std::unique_ptr<Conv>>> predictors_;  // [p]: predictor p's layers; the last is shared
  std::vector<std::array<std::unique_ptr<Conv>, 3>> fusion_;    // [i]: fusion level i's 2x2, 3x3, 3x3
  std::vector<std::array<std::unique_ptr<Conv>, 4>> resize_;    // [i]: its 2x2 on the nearest x2, by output phase
  std::unique_ptr<Conv> output_;                                 // 1x1 to RGB

  static constexpr size_t kMaxPlans = 8;
  mutable std::mutex mutex_;
  mutable std::list<std::pair<Key, std::shared_ptr<const Plan>>> plans_;
};

}  // namespace onednn
}  // namespace film
