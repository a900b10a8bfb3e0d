#include "film_interpolator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "backend.h"
#include "errors.h"
#include "model.h"
#include "idle_release.h"
#include "parallel.h"
#include "threads.h"

#ifdef FILM_WITH_ONEDNN
#include "onednn/film_net.h"
#endif

namespace film {
namespace {

// Zero padding to a multiple of the alignment, split evenly with the smaller half top and left, as FILM does.
struct Padding {
  int64_t top, bottom, left, right;
};

Padding PaddingFor(int64_t h, int64_t w, int64_t align) {
  const int64_t ph = (align - h % align) % align, pw = (align - w % align) % align;
  return {ph / 2, ph - ph / 2, pw / 2, pw - pw / 2};
}

// x [n, 3, h, w] placed in zeros [n, 3, h + top + bottom, w + left + right].
Tensor Pad(const Tensor& x, const Padding& p) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ph = h + p.top + p.bottom, pw = w + p.left + p.right;
  Tensor out = Tensor::Zeros({x.size(0), x.size(1), ph, pw});
  ParallelFor(0, planes * h, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t plane = r / h, y = r % h;
      std::memcpy(out.data<float>() + (plane * ph + p.top + y) * pw + p.left, x.data<float>() + r * w, w * sizeof(float));
    }
  });
  return out;
}

// The padding of a padded frame set to zeros again (FILM's recursion: each step pads and crops).
void ZeroPadding(Tensor* t, const Padding& p) {
  const int64_t planes = t->size(0) * t->size(1), ph = t->size(2), pw = t->size(3);
  float* d = t->data<float>();
  ParallelFor(0, planes * ph, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = d + r * pw;
      const int64_t y = r % ph;
      if (y < p.top || y >= ph - p.bottom) {
        std::fill(row, row + pw, 0.f);
      } else {
        std::fill(row, row + p.left, 0.f);
        std::fill(row + pw - p.right, row + pw, 0.f);
      }
    }
  });
}

// The frame inside the padding: float32 [n, 3, h, w], or uint8 [n, h, w, 3] of round(v * 255).
Tensor Crop(const Tensor& padded, const Padding& p, int64_t h, int64_t w, bool bytes) {
  const int64_t n = padded.size(0), ph = padded.size(2), pw = padded.size(3);
  const float* s = padded.data<float>();
  if (!bytes) {
    Tensor out = Tensor::Empty({n, 3, h, w});
    ParallelFor(0, n * 3 * h, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t plane = r / h, y = r % h;
        std::memcpy(out.data<float>() + r * w, s + (plane * ph + p.top + y) * pw + p.left, w * sizeof(float));
      }
    });
    return out;
  }
  Tensor out = Tensor::Empty({n, h, w, 3}, DType::kUint8);
  ParallelFor(0, n * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t image = r / h, y = r % h;
      uint8_t* d = out.data<uint8_t>() + r * w * 3;
      for (int c = 0; c < 3; ++c) {
        const float* row = s + ((image * 3 + c) * ph + p.top + y) * pw + p.left;
        for (int64_t x = 0; x < w; ++x) d[x * 3 + c] = static_cast<uint8_t>(std::nearbyint(row[x] * 255.f));
      }
    }
  });
  return out;
}

// Two seeded pairs in [0, 1]: the engine must give the file's own frames on them.
Tensor CheckFrames(int64_t size, uint32_t seed) {
  Tensor t = Tensor::Empty({2, 3, size, size});
  for (int64_t i = 0; i < t.numel(); ++i) {
    seed = seed * 1664525u + 1013904223u;
    t.data<float>()[i] = static_cast<float>(seed >> 8) / 16777216.f;
  }
  return t;
}

}  // namespace

std::string DtShapeName(int rank) { return rank == 2 ? "[n, 1]" : rank == 4 ? "[n, 1, 1, 1]" : ""; }

std::shared_ptr<FilmInterpolator> FilmInterpolator::Load(const LoadOptions& options) {
  const std::string device = CheckLoadOptions(options);
  const bool bf16 = options.precision == "bf16";
  const bool forced = options.engine == "onednn" || bf16;
  const InterpolatorWeights& film = options.film;
  std::shared_ptr<FilmInterpolator> model(new FilmInterpolator(device, options.threads));
  model->info_.format = film.format;
  model->info_.dtype = film.dtype;
  model->info_.levels = film.levels;
  model->info_.precision = options.precision;
  const bool full = std::string(backend::BuildName()) == "full";

  std::string why_not;  // why the engine does not run it
  if (device == "cpu" && options.engine != "torchscript") {
#ifdef FILM_WITH_ONEDNN
    try {
      auto fused = std::make_shared<const onednn::FilmNet>(film.tensors);
      if (film.levels < fused->config().MinLevels() || film.levels > 16) {
        throw std::invalid_argument("its pyramid of " + std::to_string(film.levels) + " levels is shallower than its flow and fusion levels (" +
                                    std::to_string(fused->config().MinLevels()) + ")");
      }
      model->fused_ = std::move(fused);
    } catch (...) {
      ErrorKind kind;
      why_not = DescribeCurrentException(&kind);
    }
#else
    why_not = "this build has no oneDNN engine";
#endif
    FILM_ERROR_IF(forced && !model->fused_, "'" + options.path + "': " +
                                                (bf16 ? std::string("precision 'bf16' needs the fused engine, which") : "engine 'onednn'") +
                                                " cannot run this file: " + why_not);
    if (model->fused_) {
      model->info_.engine = "onednn";
      model->info_.optimized = true;
      // Where libtorch is here, a TorchScript file's own forward is the reference the engine must
      // reproduce (as the extractor's is); elsewhere the names and shapes were checked.
      // bf16: checked in float32 (the file's forward is float32), then made again in bf16.
      const auto in_bf16 = [&]() {
        if (bf16) model->fused_ = std::make_shared<const onednn::FilmNet>(film.tensors, onednn::Precision::kBf16);
        return model;
      };
      if (!full || film.format != "torchscript") return in_bf16();
      InterpolatorInfo script_info = model->info_;
      std::shared_ptr<const FrameRunner> script = backend::LoadScriptInterpolator(options, &script_info);
      model->info_.dt_rank = script_info.dt_rank;
      model->info_.code_run = true;
      if (model->EngineMatches(*script, forced, options.path)) {
        // The file's module and its runs are gone: their pages go back, not into a frame's peak.
        script.reset();
        ReleaseWhenIdle();
        return in_bf16();
      }
      model->fused_.reset();
      model->script_ = std::move(script);
      model->info_ = script_info;
      return model;
    }
  }
  if (!full) {
    throw backend::NeedsLibtorch(device != "cpu" ? "device '" + options.device + "'"
                                 : options.engine == "torchscript" ? std::string("engine 'torchscript'")
                                                                   : "this interpolator (the fused engine cannot run it: " + why_not + ")");
  }
  FILM_ERROR_IF(film.format != "torchscript", "'" + options.path + "' is a " + film.format +
                                                  " file: it holds weights but no code, and the fused engine cannot run them (" +
                                                  why_not + ")");
  model->script_ = backend::LoadScriptInterpolator(options, &model->info_);
  return model;
}

bool FilmInterpolator::EngineMatches(const FrameRunner& script, bool forced, const std::string& path) const {
  const int64_t size = std::max<int64_t>(64, int64_t{1} << (info_.levels - 1));
  const Tensor a = CheckFrames(size, 7), b = CheckFrames(size, 11);
  const std::vector<double> times{0.3};
  const Tensor expected = script.Run(a, b, times, 0, RecursionPadding::kZeros, false, 1)[0];
  SetCallerThreads(1);
  const Tensor got = Frames(a, b, times, 0, RecursionPadding::kZeros, false)[0];
  double error = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    error = std::max<double>(error, std::fabs(got.data<float>()[i] - expected.data<float>()[i]));
  }
  if (error <= 1e-4) return true;
  FILM_ERROR_IF(forced, "'" + path + "': engine 'onednn' does not reproduce this file's forward (frames differ by " +
                            std::to_string(error) + "); use engine 'torchscript'");
  return false;
}

Tensor FilmInterpolator::Predict(const Tensor& x0, const Tensor& x1, double t) const {
#ifdef FILM_WITH_ONEDNN
  Tensor frame = fused_->Run(x0, x1, std::vector<float>(static_cast<size_t>(x0.size(0)), static_cast<float>(t)), info_.levels);
  float* d = frame.data<float>();
  ParallelFor(0, frame.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) d[i] = std::min(1.f, std::max(0.f, d[i]));
  });
  return frame;
#else
  (void)x1;
  (void)t;
  return x0;
#endif
}

std::vector<Tensor> FilmInterpolator::Frames(const Tensor& x0, const Tensor& x1, const std::vector<double>& times,
                                             int recursions, RecursionPadding padding, bool bytes) const {
  const int64_t h = x0.size(2), w = x0.size(3);
  const Padding p = PaddingFor(h, w, int64_t{1} << (info_.levels - 1));
  const Tensor a = Pad(x0, p), b = Pad(x1, p);
  std::vector<Tensor> frames;
  auto emit = [&](const Tensor& padded) { frames.push_back(Crop(padded, p, h, w, bytes)); };
  if (recursions > 0) {
    // Each middle frame made from its neighbours at t = 0.5. kZeros: its padding zeros again, as
    // FILM's own recursion does (each step a whole interpolator call that pads and crops);
    // kPrediction: the padded, clamped prediction as it is, as the port's inference.py feeds it back.
    std::function<void(const Tensor&, const Tensor&, int)> recurse = [&](const Tensor& l, const Tensor& r, int depth) {
      if (depth == 0) return;
      Tensor mid = Predict(l, r, 0.5);
      if (padding == RecursionPadding::kZeros) ZeroPadding(&mid, p);
      recurse(l, mid, depth - 1);
      emit(mid);
      recurse(mid, r, depth - 1);
    };
    recurse(a, b, recursions);
  } else {
    for (double t : times) emit(Predict(a, b, t));
  }
  return frames;
}

std::vector<Tensor> FilmInterpolator::Run(const Tensor& x0, const Tensor& x1, const std::vector<double>& times,
                                          int recursions, RecursionPadding padding, bool bytes, int threads) const {
  FILM_RANGE_ERROR_IF(x0.dim() != 4 || x0.sizes() != x1.sizes() || x0.size(1) != 3,
                      "x0 and x1 must both be [n, 3, h, w] and of one shape; got " + x0.ShapeString() + " and " +
                          x1.ShapeString());
  FILM_RANGE_ERROR_IF(recursions < 0 || recursions > 16, "recursions must be from 0 to 16");
  FILM_RANGE_ERROR_IF(recursions == 0 && times.empty(), "a run needs at least one time");
  for (double t : times) FILM_RANGE_ERROR_IF(!(t >= 0 && t <= 1), "times must be within [0, 1]");
  if (!fused_) return script_->Run(x0, x1, times, recursions, padding, bytes, threads);
  // This thread's own OpenMP setting: concurrent runs on other threads keep theirs.
  SetCallerThreads(threads > 0 ? threads : threads_);
  return Frames(x0, x1, times, recursions, padding, bytes);
}

}  // namespace film
