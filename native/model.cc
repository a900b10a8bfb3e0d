#include "model.h"

#include <algorithm>
#include <cmath>

#include "backend.h"
#include "errors.h"
#include "tensor_io.h"
#include "threads.h"

#ifdef FILM_WITH_ONEDNN
#include "onednn/engine.h"
#endif

namespace film {
namespace {

// A 64x64 frame with values in [0, 1] that tells networks apart.
Tensor CheckFrame() {
  Tensor t = Tensor::Empty({1, 3, 64, 64});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::fabs(std::sin(0.37f * static_cast<float>(i)));
  return t;
}

}  // namespace

bool OnednnCompiledIn() {
#ifdef FILM_WITH_ONEDNN
  return true;
#else
  return false;
#endif
}

std::string CheckLoadOptions(const LoadOptions& options) {
  FILM_RANGE_ERROR_IF(options.threads < 1, "threads must be at least 1");
  FILM_RANGE_ERROR_IF(options.engine != "auto" && options.engine != "onednn" && options.engine != "torchscript",
                      "Expected 'auto', 'onednn' or 'torchscript' for engine but received '" + options.engine + "'");
  FILM_RANGE_ERROR_IF(options.precision != "fp32" && options.precision != "bf16",
                      "Expected 'fp32' or 'bf16' for precision but received '" + options.precision + "'");
  const bool bf16 = options.precision == "bf16";
  FILM_RANGE_ERROR_IF(bf16 && options.engine == "torchscript",
                      "precision 'bf16' runs on the oneDNN engine, and engine is 'torchscript'");
  FILM_RANGE_ERROR_IF(bf16 && options.half, "precision 'bf16' and half: true exclude each other");
  const std::string device = backend::ResolveDevice(options.device, options.half);
  FILM_RANGE_ERROR_IF(options.engine == "onednn" && device != "cpu", "engine 'onednn' runs on the CPU, and device is " + device);
  FILM_RANGE_ERROR_IF(bf16 && device != "cpu", "precision 'bf16' runs on the CPU, and device is " + device);
#ifdef FILM_WITH_ONEDNN
  if (bf16 && !onednn::Engine::HasBf16()) {
    throw UserError(ErrorKind::kError, "precision 'bf16': oneDNN's instruction set on this CPU is " +
                                           onednn::Engine::Isa() + ", which has no bf16 (it needs avx512_core_bf16 "
                                           "or avx512_core_amx); use precision 'fp32'", code::kPrecision);
  }
#else
  if (bf16) {
    throw UserError(ErrorKind::kError, "precision 'bf16': this build of film-features has no oneDNN engine "
                                       "(apt-get install libdnnl-dev, then rebuild)", code::kPrecision);
  }
#endif
  return device;
}

std::shared_ptr<Model> Model::Load(const LoadOptions& options) {
  const std::string device = CheckLoadOptions(options);
  const bool bf16 = options.precision == "bf16";
  const ExtractorWeights& w = options.weights;
  FILM_ERROR_IF(w.stages.empty(), "'" + options.path + "': no extractor weights were read from it");
  ModelInfo info;
  info.source = w.source;
  info.format = w.format;
  info.channels = w.channels;
  info.sub_levels = static_cast<int64_t>(w.stages.size());
  info.dtype = w.dtype;
  info.weights = w.origin;
  std::shared_ptr<Model> model(new Model(device, options.threads, info));

  const bool forced = options.engine == "onednn" || bf16;
  if (device == "cpu" && options.engine != "torchscript" && model->UseOnednn(options)) {
    // Where libtorch is here, a TorchScript file's own forward is the reference the engine must
    // reproduce (the full build has always checked it); elsewhere the names and shapes were checked.
    if (std::string(backend::BuildName()) != "full" || w.format != "torchscript") {
      // A first run, one level of a small frame: oneDNN's and OpenMP's once-per-process and once-per-thread
      // set-up happen here rather than in the caller's first extract (the full build's check below
      // does the same).
      model->Run({CheckFrame()}, 1, options.threads);
      return model;
    }
    if (model->EngineMatchesScript(options, forced)) return model;
  }
  FILM_ERROR_IF(bf16, "'" + options.path + "': precision 'bf16' needs the oneDNN engine, which cannot run this file");
  if (std::string(backend::BuildName()) != "full") {
    throw backend::NeedsLibtorch(device != "cpu" ? "device '" + options.device + "'" : "engine 'torchscript'");
  }
  FILM_ERROR_IF(w.format != "torchscript", "'" + options.path + "' is a " + w.format +
                                               " file: it holds weights but no code, so only the oneDNN engine runs it");
  model->fused_.reset();
  model->script_ = backend::LoadScriptExtractor(options, /*optimize=*/true, &model->info_);
  return model;
}

std::vector<Tensor> Model::Run(const std::vector<Tensor>& pyramid, size_t levels, int threads, bool nhwc) const {
  FILM_RANGE_ERROR_IF(pyramid.empty() || levels < pyramid.size(), "a run needs at least one level");
  // This thread's own OpenMP setting: concurrent runs on other threads keep theirs.
  if (is_cpu()) SetCallerThreads(threads > 0 ? threads : threads_);
#ifdef FILM_WITH_ONEDNN
  if (fused_) {
    std::vector<Tensor> inputs = pyramid;
    while (inputs.size() < levels) inputs.push_back(AvgPool2x2(inputs.back()));
    return fused_->Run(inputs, nhwc ? onednn::Layout::kNhwc : onednn::Layout::kNchw);
  }
#endif
  if (!script_) throw UserError(ErrorKind::kError, "the model has nothing to run it", code::kRuntime);
  return script_->Run(pyramid, levels, nhwc);
}

bool Model::UseOnednn(const LoadOptions& options) {
  const bool bf16 = options.precision == "bf16";
  const bool forced = options.engine == "onednn" || bf16;
#ifdef FILM_WITH_ONEDNN
  try {
    fused_ = std::make_shared<const onednn::Engine>(options.weights.stages,
                                                    bf16 ? onednn::Precision::kBf16 : onednn::Precision::kF32);
  } catch (...) {
    if (!forced) return false;  // auto: the TorchScript path runs it
    ErrorKind kind;
    throw UserError(ErrorKind::kError, "'" + options.path + "': engine 'onednn' failed to prepare: " +
                                           DescribeCurrentException(&kind));
  }
  info_.engine = "onednn";
  info_.isa = onednn::Engine::Isa();
  info_.onednn = onednn::Engine::Version();
  info_.precision = options.precision;
  info_.optimized = true;
  return true;
#else
  FILM_ERROR_IF(forced, "engine 'onednn': this build of film-features has no oneDNN engine "
                        "(apt-get install libdnnl-dev, then rebuild)");
  return false;
#endif
}

bool Model::EngineMatchesScript(const LoadOptions& options, bool forced) {
  // bf16 keeps 8 bits of mantissa: it is checked to what that allows (README, "Precision"), which
  // still tells another network apart.
  const double tolerance = options.precision == "bf16" ? 5e-2 : 1e-4;
  ModelInfo script_info = info_;
  std::shared_ptr<const ScriptRunner> script = backend::LoadScriptExtractor(options, /*optimize=*/false, &script_info);
  const std::vector<Tensor> pyramid{CheckFrame()};
  SetCallerThreads(1);
  std::vector<Tensor> inputs = pyramid;
  while (inputs.size() < 7) inputs.push_back(AvgPool2x2(inputs.back()));
  const std::vector<Tensor> expected = script->Run(inputs, 7, false);
  const std::vector<Tensor> got = Run(pyramid, 7, 1);
  info_.code_run = true;
  for (size_t i = 0; i < expected.size() && i < got.size(); ++i) {
    double scale = 1e-12, error = 0;
    const float* e = expected[i].data<float>();
    const float* g = got[i].data<float>();
    const bool same_shape = expected[i].sizes() == got[i].sizes();
    for (int64_t k = 0; same_shape && k < expected[i].numel(); ++k) scale = std::max<double>(scale, std::fabs(e[k]));
    for (int64_t k = 0; same_shape && k < expected[i].numel(); ++k) error = std::max<double>(error, std::fabs(g[k] - e[k]));
    error = same_shape ? error / scale : INFINITY;
    if (!(error <= tolerance)) {
      fused_.reset();
      FILM_ERROR_IF(forced, "'" + options.path + "': engine 'onednn' does not reproduce this file's forward (level " +
                                std::to_string(i) + " differs by " + std::to_string(error) +
                                " relative); use engine 'torchscript'");
      return false;
    }
  }
  return true;
}

}  // namespace film
