#include "interpolator_model.h"

#include <ATen/Parallel.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <sstream>

#include "aten_tensor.h"
#include "devices.h"
#include "errors.h"
#include "model_file.h"
#include "same_padding.h"
#include "script_error.h"
#include "threads.h"

namespace film {
namespace {

[[noreturn]] void NotAnInterpolator(const std::string& path, const std::string& why) {
  throw UserError(ErrorKind::kError, "'" + path + "' is not a whole FILM interpolator: " + why);
}

void CheckForward(const torch::jit::Module& root, const std::string& path) {
  auto forward = root.find_method("forward");
  if (!forward) NotAnInterpolator(path, "it has no forward method");
  const c10::FunctionSchema& schema = forward->function().getSchema();
  const auto& args = schema.arguments();  // args[0] is self
  const auto tensor = c10::TensorType::get();
  bool ok = args.size() == 4 && schema.returns().size() == 1 && schema.returns()[0].type()->isSubtypeOf(*tensor);
  for (size_t i = 1; ok && i < args.size(); ++i) ok = args[i].type()->isSubtypeOf(*tensor);
  if (!ok) {
    std::ostringstream found;
    found << schema;
    NotAnInterpolator(path, "forward is " + found.str() + ", expected forward(Tensor x0, Tensor x1, Tensor batch_dt) -> Tensor");
  }
}

std::string WeightsDtype(const torch::jit::Module& root, const std::string& path) {
  for (const auto& p : root.named_parameters(/*recurse=*/true)) {
    if (!p.value.is_floating_point()) continue;
    if (p.value.scalar_type() == at::kFloat) return "float32";
    if (p.value.scalar_type() == at::kHalf) return "float16";
    NotAnInterpolator(path, std::string("its weights are ") + c10::toString(p.value.scalar_type()) +
                                "; float32 and float16 are supported");
  }
  NotAnInterpolator(path, "it has no floating-point weights");
}

at::Tensor BatchDt(int64_t n, int rank, double t, const at::TensorOptions& options) {
  std::vector<int64_t> shape(rank, 1);
  shape[0] = n;
  return at::full(shape, t, options);
}

// One forward on two small pairs with each batch_dt shape; the first that gives frames of the
// inputs' shape is the file's. Two pairs, because a [1, 1] batch_dt broadcasts in either convention.
// Neither: the file cannot be run, said now rather than at the first run.
int ProbeDtRank(torch::jit::Module& root, const c10::Device& device, at::ScalarType dtype, const std::string& path) {
  const auto options = at::TensorOptions().device(device).dtype(dtype);
  const at::Tensor x0 = at::rand({2, 3, InterpolatorModel::kAlign, InterpolatorModel::kAlign}, options);
  const at::Tensor x1 = at::rand({2, 3, InterpolatorModel::kAlign, InterpolatorModel::kAlign}, options);
  std::string tried;
  // [n, 1] first: Google's and the port's (`scalar[..., None, None]`, since v1.0.2); then [n, 1, 1, 1],
  // which older exports multiply the flows with directly.
  for (int rank : {2, 4}) {
    std::string why;
    try {
      c10::IValue out = root.forward({x0, x1, BatchDt(2, rank, 0.5, options)});
      if (out.isTensor() && out.toTensor().sizes() == x0.sizes()) return rank;
      why = out.isTensor() ? "returned shape " + c10::str(out.toTensor().sizes()) : "returned " + out.tagKind();
    } catch (...) {
      ErrorKind kind;
      why = ScriptFailureLine(DescribeCurrentException(&kind));
    }
    tried += (tried.empty() ? "" : "; ") + DtShapeName(rank) + ": " + why;
  }
  NotAnInterpolator(path, "its forward fails on two 64x64 pairs with either batch_dt shape (" + tried + ")");
}

// Zero padding to a multiple of kAlign, split evenly with the smaller half top and left, as FILM does.
struct Padding {
  int64_t top, bottom, left, right;
};

Padding PaddingFor(int64_t h, int64_t w) {
  const int64_t a = InterpolatorModel::kAlign;
  const int64_t ph = (a - h % a) % a, pw = (a - w % a) % a;
  return {ph / 2, ph - ph / 2, pw / 2, pw - pw / 2};
}

}  // namespace


std::shared_ptr<InterpolatorModel> InterpolatorModel::Load(const LoadOptions& options, InterpolatorInfo* loaded) {
  FILM_RANGE_ERROR_IF(options.threads < 1, "threads must be at least 1");
  const c10::Device device = TorchDevice(options.device, options.half);
  c10::InferenceMode inference;

  torch::jit::Module root = LoadScriptFile(options.path);
  CheckForward(root, options.path);
  InterpolatorInfo info = *loaded;
  info.dtype = WeightsDtype(root, options.path);
  info.engine = "torchscript";
  info.code_run = true;
  info.optimized = false;

  // fp16 files run in float32 on the CPU: CPU half convolution is slow or missing.
  root.to(device, options.half ? at::kHalf : at::kFloat);
  root.eval();
  // cuDNN's benchmark mode is left as the process has it: FILM_FEATURES_CUDNN_BENCHMARK and
  // setCudnnBenchmark() (cudnn_settings.h) are its only setters.
  info.dt_rank = ProbeDtRank(root, device, options.half ? at::kHalf : at::kFloat, options.path);
  std::shared_ptr<InterpolatorModel> model(
      new InterpolatorModel(root, options.path, device, info, options.threads, options.half));

  // Warm-up (the first runs of a TorchScript graph profile and specialise it), and a reference
  // frame that the optimized module must reproduce before it replaces this one.
  const at::Tensor a = at::rand({1, 3, kAlign, kAlign}, at::TensorOptions().dtype(at::kFloat));
  const at::Tensor b = at::rand({1, 3, kAlign, kAlign}, at::TensorOptions().dtype(at::kFloat));
  const at::Tensor plain = model->RunAten(a, b, {0.5}, 0, RecursionPadding::kZeros, false, 1)[0];
  *loaded = info;
  if (!device.is_cpu()) return model;
  try {
    torch::jit::Module frozen = torch::jit::freeze(root);
    ReplaceSamePadding(frozen);
    std::shared_ptr<InterpolatorModel> fast(new InterpolatorModel(
        torch::jit::optimize_for_inference(frozen), options.path, device, info, options.threads, options.half));
    at::Tensor out;
    for (int i = 0; i < 2; ++i) out = fast->RunAten(a, b, {0.5}, 0, RecursionPadding::kZeros, false, 1)[0];
    // oneDNN's convolutions sum in another order: ~1e-6 here; anything more means a different graph.
    if ((out - plain).abs().max().item<float>() <= 1e-4f) {
      fast->info_.optimized = loaded->optimized = true;
      return fast;
    }
  } catch (...) {
    // Left unoptimized: slower, same numbers.
  }
  model->RunAten(a, b, {0.5}, 0, RecursionPadding::kZeros, false, 1);
  return model;
}

at::Tensor InterpolatorModel::Predict(const at::Tensor& x0, const at::Tensor& x1, double t) const {
  c10::IValue result;
  try {
    result = module_.forward({x0, x1, BatchDt(x0.size(0), info_.dt_rank, t, x0.options())});
  } catch (...) {
    RethrowAsScriptFailure(path_, "interpolating " + c10::str(x0.sizes()) + " (padded) frames at t = " + c10::str(t));
  }
  FILM_ERROR_IF(!result.isTensor(), "the model's forward returned " + result.tagKind() + ", not a Tensor");
  at::Tensor frame = result.toTensor();
  if (frame.is_mkldnn()) frame = frame.to_dense();
  FILM_ERROR_IF(frame.sizes() != x0.sizes(), "the model returned a frame of shape " + c10::str(frame.sizes()) +
                                                 " for inputs of shape " + c10::str(x0.sizes()));
  return frame.clamp(0, 1);
}

void InterpolatorModel::Recurse(const at::Tensor& x0, const at::Tensor& x1, const at::Tensor& inside, int depth,
                                const std::function<void(const at::Tensor&)>& emit) const {
  if (depth == 0) return;
  // kZeros, as FILM's own recursion does (each step a whole interpolator call that pads and crops):
  // the middle frame's padding is zeros again before it is an input. kPrediction (no inside), as
  // the port's inference.py does: the padded, clamped prediction as it is.
  at::Tensor mid = Predict(x0, x1, 0.5);
  if (inside.defined()) mid.mul_(inside);
  Recurse(x0, mid, inside, depth - 1, emit);
  emit(mid);
  Recurse(mid, x1, inside, depth - 1, emit);
}

std::vector<at::Tensor> InterpolatorModel::Frames(const at::Tensor& x0, const at::Tensor& x1,
                                                  const std::vector<double>& times, int recursions,
                                                  RecursionPadding padding, bool bytes) const {
  const int64_t h = x0.size(2), w = x0.size(3);
  const Padding p = PaddingFor(h, w);
  const at::ScalarType dtype = half_ ? at::kHalf : at::kFloat;
  auto prepare = [&](const at::Tensor& x) {
    return at::constant_pad_nd(x.to(device_, dtype, /*non_blocking=*/true), {p.left, p.right, p.top, p.bottom}, 0);
  };
  const at::Tensor a = prepare(x0), b = prepare(x1);
  std::vector<at::Tensor> frames;
  // Each frame is cropped, converted and sent to the host as soon as it is made: the device keeps
  // only the padded frames the recursion still needs (one per level, k in all), not all 2^k - 1.
  auto emit = [&](const at::Tensor& padded) {
    at::Tensor f = padded.narrow(2, p.top, h).narrow(3, p.left, w);
    f = bytes ? f.to(at::kFloat).mul(255).round_().to(at::kByte).permute({0, 2, 3, 1}) : f.to(at::kFloat);
    frames.push_back(f.contiguous().to(c10::kCPU));
  };
  if (recursions > 0) {
    // 1 over the frame, 0 over the padding; kPrediction zeroes nothing
    const at::Tensor inside = padding == RecursionPadding::kZeros
                                  ? at::constant_pad_nd(at::ones({1, 1, h, w}, a.options()), {p.left, p.right, p.top, p.bottom}, 0)
                                  : at::Tensor();
    Recurse(a, b, inside, recursions, emit);
  } else {
    for (double t : times) emit(Predict(a, b, t));
  }
  return frames;
}

std::vector<Tensor> InterpolatorModel::Run(const Tensor& x0, const Tensor& x1, const std::vector<double>& times,
                                           int recursions, RecursionPadding padding, bool bytes, int threads) const {
  std::vector<Tensor> frames;
  for (at::Tensor& f : RunAten(ToAten(x0), ToAten(x1), times, recursions, padding, bytes, threads)) {
    frames.push_back(FromAten(std::move(f)));
  }
  return frames;
}

std::vector<at::Tensor> InterpolatorModel::RunAten(const at::Tensor& x0, const at::Tensor& x1,
                                                   const std::vector<double>& times, int recursions,
                                                   RecursionPadding padding, bool bytes, int threads) const {
  FILM_RANGE_ERROR_IF(x0.dim() != 4 || x0.sizes() != x1.sizes() || x0.size(1) != 3,
                      "x0 and x1 must both be [n, 3, h, w] and of one shape; got " + c10::str(x0.sizes()) + " and " +
                          c10::str(x1.sizes()));
  FILM_RANGE_ERROR_IF(recursions < 0 || recursions > 16, "recursions must be from 0 to 16");
  FILM_RANGE_ERROR_IF(recursions == 0 && times.empty(), "a run needs at least one time");
  for (double t : times) FILM_RANGE_ERROR_IF(!(t >= 0 && t <= 1), "times must be within [0, 1]");
  c10::InferenceMode inference;
  if (device_.is_cpu()) {
    // This thread's own OpenMP setting: concurrent runs on other threads keep theirs.
    SetCallerThreads(threads > 0 ? threads : threads_);
    return Frames(x0, x1, times, recursions, padding, bytes);
  }
  // Accelerator: a stream of this run's own, so concurrent runs overlap; wait on it only.
  const c10::Stream stream = c10::impl::VirtualGuardImpl(device_.type()).getStreamFromGlobalPool(device_);
  c10::StreamGuard stream_guard(stream);
  std::vector<at::Tensor> frames = Frames(x0, x1, times, recursions, padding, bytes);
  stream.synchronize();
  return frames;
}

}  // namespace film
