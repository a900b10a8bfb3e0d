// A whole FILM interpolator's own TorchScript (the full build's runner of film_interpolator.h): a
// module whose forward is (x0: Tensor, x1: Tensor, batch_dt: Tensor) -> Tensor, and FILM's recipe
// around it (pad to a multiple of 64, clamp, crop, recursion at t = 0.5). Nothing here knows about JS.
#pragma once

#include <torch/script.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "film_interpolator.h"
#include "model.h"
#include "script_model.h"

namespace film {

class InterpolatorModel : public ScriptModel, public FrameRunner {
 public:
  // FILM pads frames to a multiple of 2^(7 - 1): its pyramid has 7 levels.
  static constexpr int64_t kAlign = 64;

  // Loads and checks the file's forward; throws UserError (ERR_FILM_MODEL_FORMAT) for anything else.
  // info: its dtype, dt_rank, optimized, engine and code_run are set.
  static std::shared_ptr<InterpolatorModel> Load(const LoadOptions& options, InterpolatorInfo* info);

  // FrameRunner: Run below, on the addon's tensors (no copy on the CPU).
  std::vector<Tensor> Run(const Tensor& x0, const Tensor& x1, const std::vector<double>& times, int recursions,
                          RecursionPadding padding, bool bytes, int threads) const override;

  // Frames between x0 and x1 (float32 CPU [n, 3, h, w], the same shape), in time order: one per
  // time, or with recursions = k > 0 the 2^k - 1 frames at i / 2^k, each middle one made from its
  // neighbours at t = 0.5 (padding: what is fed back between steps, film_interpolator.h). Clamped
  // to [0, 1]. bytes: uint8 [n, h, w, 3] (round(v * 255)) instead of float32 [n, 3, h, w]. On the
  // CPU, contiguous. threads: this run's CPU threads. Thread-safe.
  std::vector<at::Tensor> RunAten(const at::Tensor& x0, const at::Tensor& x1, const std::vector<double>& times,
                                  int recursions, RecursionPadding padding, bool bytes, int threads) const;

 private:
  InterpolatorModel(torch::jit::Module module, std::string path, c10::Device device, InterpolatorInfo info,
                    int threads, bool half)
      : ScriptModel(std::move(module), std::move(path), device, threads, half), info_(std::move(info)) {}

  // One forward on padded device tensors: the frame at t, clamped.
  at::Tensor Predict(const at::Tensor& x0, const at::Tensor& x1, double t) const;
  // inside: 1 over the frame, 0 over the padding (kZeros), or undefined (kPrediction: nothing zeroed).
  void Recurse(const at::Tensor& x0, const at::Tensor& x1, const at::Tensor& inside, int depth,
               const std::function<void(const at::Tensor&)>& emit) const;
  std::vector<at::Tensor> Frames(const at::Tensor& x0, const at::Tensor& x1, const std::vector<double>& times,
                                 int recursions, RecursionPadding padding, bool bytes) const;

  InterpolatorInfo info_;
};

}  // namespace film
