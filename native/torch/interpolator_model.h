// A loaded whole FILM interpolator: a TorchScript module whose forward is
// (x0: Tensor, x1: Tensor, batch_dt: Tensor) -> Tensor, and FILM's recipe around it (pad to a
// multiple of 64, clamp, crop, recursion at t = 0.5). Pure libtorch; nothing here knows about JS.
#pragma once

#include <torch/script.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model.h"
#include "script_model.h"

namespace film {

struct InterpolatorInfo {
  std::string dtype;       // the weights' dtype in the file: "float32" or "float16"
  bool optimized = false;  // frozen + optimized for inference at load, and checked against the plain module
  // The rank of the batch_dt the file's forward takes, found at load: 2, [n, 1] (Google's FILM,
  // the PyTorch port since v1.0.2), or 4, [n, 1, 1, 1] (older exports).
  int dt_rank = 2;
};

// "[n, 1]" for rank 2, "[n, 1, 1, 1]" for rank 4.
std::string DtShapeName(int rank);

class InterpolatorModel : public ScriptModel {
 public:
  // FILM pads frames to a multiple of 2^(7 - 1): its pyramid has 7 levels.
  static constexpr int64_t kAlign = 64;

  // Loads and checks the file's forward; throws UserError (ERR_FILM_MODEL_FORMAT) for anything else.
  static std::shared_ptr<InterpolatorModel> Load(const LoadOptions& options);

  // Frames between x0 and x1 (float32 CPU [n, 3, h, w], the same shape), in time order: one per
  // time, or with recursions = k > 0 the 2^k - 1 frames at i / 2^k, each middle one made from its
  // neighbours at t = 0.5 (cropped and padded again in between, as separate calls would). Clamped to [0, 1]. bytes: uint8 [n, h, w, 3] (round(v * 255)) instead of
  // float32 [n, 3, h, w]. On the CPU, contiguous. threads: this run's CPU threads. Thread-safe.
  std::vector<at::Tensor> Run(const at::Tensor& x0, const at::Tensor& x1, const std::vector<double>& times,
                              int recursions, bool bytes, int threads) const;

  const InterpolatorInfo& info() const { return info_; }

 private:
  InterpolatorModel(torch::jit::Module module, std::string path, c10::Device device, InterpolatorInfo info,
                    int threads, bool half)
      : ScriptModel(std::move(module), std::move(path), device, threads, half), info_(std::move(info)) {}

  // One forward on padded device tensors: the frame at t, clamped.
  at::Tensor Predict(const at::Tensor& x0, const at::Tensor& x1, double t) const;
  void Recurse(const at::Tensor& x0, const at::Tensor& x1, const at::Tensor& inside, int depth,
               const std::function<void(const at::Tensor&)>& emit) const;
  std::vector<at::Tensor> Frames(const at::Tensor& x0, const at::Tensor& x1, const std::vector<double>& times,
                                 int recursions, bool bytes) const;

  InterpolatorInfo info_;
};

}  // namespace film
