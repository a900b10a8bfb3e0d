// A loaded whole FILM interpolator, and FILM's recipe around its forward: pad to a multiple of
// 2^(levels - 1), clamp, crop, recursion at t = 0.5. The fused engine (onednn/film_net.h) runs it
// on the CPU from the weights our reader read, in every build; the libtorch backend runs the file's
// own TorchScript (torch/interpolator_model.h) on CUDA, with engine 'torchscript', and where the
// engine cannot. Nothing here knows about JS.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model.h"
#include "tensor.h"

namespace film {

namespace onednn {
class FilmNet;
}

struct InterpolatorInfo {
  std::string dtype;       // the weights' dtype in the file: "float32", "float16" or "bfloat16"
  std::string format;      // the file's format, as the reader found it
  std::string engine;      // what runs it: "onednn" or "torchscript"
  bool optimized = false;  // the fused engine, or TorchScript frozen + optimized and checked against the plain module
  bool code_run = false;   // the file's TorchScript code was run (libtorch loaded it)
  // The rank of the batch_dt the file's forward takes, found at load where libtorch ran it: 2,
  // [n, 1] (Google's FILM, the PyTorch port since v1.0.2), or 4, [n, 1, 1, 1] (older exports);
  // 0 where it was not run (the engine scales by one time per pair either way).
  int dt_rank = 0;
  int levels = 7;          // the image pyramid's depth: frames are padded to 2^(levels - 1)
  std::string precision = "fp32";  // what the fused engine's convolutions compute in: "fp32" or "bf16"
};

// "[n, 1]" for rank 2, "[n, 1, 1, 1]" for rank 4.
std::string DtShapeName(int rank);

// What a recursion feeds back as the next step's input (InterpolateOptions.recursionPadding).
enum class RecursionPadding {
  kZeros,       // the middle frame with its padding set to zeros again: each step a whole pad-predict-crop
                // call, as Google's FILM does
  kPrediction,  // the padded prediction as it is (clamped), non-zero in its padding: as the PyTorch
                // port's inference.py does
};

// Frames from two padded-or-not batches of frames, by FILM's recipe (FilmInterpolator::Run).
class FrameRunner {
 public:
  virtual ~FrameRunner() = default;
  virtual std::vector<Tensor> Run(const Tensor& x0, const Tensor& x1, const std::vector<double>& times, int recursions,
                                  RecursionPadding padding, bool bytes, int threads) const = 0;
};

class FilmInterpolator {
 public:
  // Loads and checks; throws UserError (ERR_FILM_MODEL_FORMAT) for a file neither the engine nor
  // (where it is) libtorch runs, ERR_FILM_NEEDS_LIBTORCH for what only libtorch runs in the core.
  static std::shared_ptr<FilmInterpolator> Load(const LoadOptions& options);

  // Frames between x0 and x1 (float32 CPU [n, 3, h, w], the same shape), in time order: one per
  // time, or with recursions = k > 0 the 2^k - 1 frames at i / 2^k, each middle one made from its
  // neighbours at t = 0.5 (padding: what is fed back between steps; it changes nothing without
  // recursions, or where no padding is needed). Clamped to [0, 1]. bytes: uint8 [n, h, w, 3]
  // (round(v * 255)) instead of float32 [n, 3, h, w]. threads: this run's CPU threads. Thread-safe.
  std::vector<Tensor> Run(const Tensor& x0, const Tensor& x1, const std::vector<double>& times, int recursions,
                          RecursionPadding padding, bool bytes, int threads) const;

  const InterpolatorInfo& info() const { return info_; }
  const std::string& device_name() const { return device_; }
  bool is_cpu() const { return device_ == "cpu"; }
  int threads() const { return threads_; }

 private:
  FilmInterpolator(std::string device, int threads) : device_(std::move(device)), threads_(threads) {}
  // One forward of the engine on padded frames: the frame at t, clamped.
  Tensor Predict(const Tensor& x0, const Tensor& x1, double t) const;
  std::vector<Tensor> Frames(const Tensor& x0, const Tensor& x1, const std::vector<double>& times, int recursions,
                             RecursionPadding padding, bool bytes) const;
  // Whether the engine gives the file's own frames on two 64x64 pairs (the full build, a TorchScript file).
  bool EngineMatches(const FrameRunner& script, bool forced, const std::string& path) const;

  std::string device_;
  int threads_;
  InterpolatorInfo info_;
  std::shared_ptr<const onednn::FilmNet> fused_;  // CPU runs go here when set
  std::shared_ptr<const FrameRunner> script_;     // else here
};

}  // namespace film
