#include "model.h"

#include <ATen/Parallel.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/cuda.h>

#ifdef FILM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>

#include "cuda_staging.h"
#endif

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>

#include "errors.h"
#include "model_file.h"
#include "model_metadata.h"
#include "same_padding.h"
#include "script_error.h"
#include "threads.h"

#ifdef FILM_WITH_ONEDNN
#include "onednn/engine.h"
#include "onednn/weights.h"
#endif

namespace film {
namespace {

// FILM's names: extract_sublevels.convs.{stage}.{conv}.0.{weight|bias}
const std::regex kConvParam(R"(^extract_sublevels\.convs\.(\d+)\.([01])\.0\.(weight|bias)$)");

std::string ChildNames(const torch::jit::Module& module) {
  std::string names;
  for (const auto& child : module.named_children()) {
    names += (names.empty() ? "" : ", ") + child.name;
  }
  return names.empty() ? "none" : names;
}

std::string DtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    default: return c10::toString(type);
  }
}

// Reads the stage count and base width from the conv weights, checking FILM's layout.
void InspectWeights(const torch::jit::Module& extractor, const std::string& path, ModelInfo* info) {
  std::map<std::pair<int, int>, at::Tensor> weights;
  std::map<std::pair<int, int>, at::Tensor> biases;
  for (const auto& p : extractor.named_parameters(/*recurse=*/true)) {
    std::smatch m;
    if (!std::regex_match(p.name, m, kConvParam)) continue;
    auto key = std::make_pair(std::stoi(m[1]), std::stoi(m[2]));
    (m[3] == "weight" ? weights : biases)[key] = p.value;
  }
  FILM_ERROR_IF(weights.empty(), "'" + path + "' is not a FILM feature extractor: it has no " +
                                     "extract_sublevels.convs.{j}.{k}.0.weight parameters");
  const int64_t stages = weights.rbegin()->first.first + 1;
  const at::Tensor& first = weights.begin()->second;
  const int64_t channels = first.dim() == 4 ? first.size(0) : 0;
  for (int64_t j = 0; j < stages; ++j) {
    const int64_t width = channels << j;
    for (int k = 0; k < 2; ++k) {
      auto key = std::make_pair(static_cast<int>(j), k);
      const std::string name = "extract_sublevels.convs." + std::to_string(j) + "." + std::to_string(k) + ".0";
      FILM_ERROR_IF(!weights.count(key) || !biases.count(key),
                    "'" + path + "' is not a FILM feature extractor: " + name + " is missing");
      const int64_t in = k == 1 ? width : (j == 0 ? 3 : width / 2);
      const auto& w = weights[key];
      FILM_ERROR_IF(w.sizes() != at::IntArrayRef({width, in, 3, 3}) || biases[key].numel() != width,
                    "'" + path + "' is not a FILM feature extractor: " + name + ".weight has shape " +
                        c10::str(w.sizes()) + ", expected " + c10::str(at::IntArrayRef({width, in, 3, 3})));
    }
  }
  info->channels = channels;
  info->sub_levels = stages;
  info->dtype = DtypeName(first.scalar_type());
  FILM_ERROR_IF(first.scalar_type() != at::kFloat && first.scalar_type() != at::kHalf,
                "'" + path + "': weights are " + info->dtype + "; float32 and float16 are supported");
}

void CheckSignature(const torch::jit::Module& extractor, const std::string& path) {
  auto forward = extractor.find_method("forward");
  FILM_ERROR_IF(!forward, "'" + path + "' is not a FILM feature extractor: it has no forward method");
  const c10::FunctionSchema& schema = forward->function().getSchema();
  const auto tensors = c10::ListType::ofTensors();
  const bool ok = schema.arguments().size() == 2 && schema.arguments()[1].type()->isSubtypeOf(*tensors) &&
                  schema.returns().size() == 1 && schema.returns()[0].type()->isSubtypeOf(*tensors);
  std::ostringstream found;
  found << schema;
  FILM_ERROR_IF(!ok, "'" + path + "' is not a FILM feature extractor: forward is " + found.str() +
                         ", expected forward(Tensor[] image_pyramid) -> Tensor[]");
}

}  // namespace

bool CudaCompiledIn() {
#ifdef FILM_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool OnednnCompiledIn() {
#ifdef FILM_WITH_ONEDNN
  return true;
#else
  return false;
#endif
}

int CudaDeviceCount() {
  return CudaCompiledIn() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

c10::Device ResolveDevice(const std::string& spec, bool half) {
  if (spec == "auto") {
    if (CudaDeviceCount() > 0) return c10::Device(c10::kCUDA, 0);
    FILM_RANGE_ERROR_IF(half, "half: true needs a CUDA device, and device 'auto' found none");
    return c10::Device(c10::kCPU);
  }
  if (spec == "cpu") {
    FILM_RANGE_ERROR_IF(half, "half: true needs a CUDA device; fp16 on CPU is not supported");
    return c10::Device(c10::kCPU);
  }
  static const std::regex cuda(R"(^cuda(?::(\d{1,4}))?$)");
  std::smatch m;
  FILM_RANGE_ERROR_IF(!std::regex_match(spec, m, cuda),
                      "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received '" + spec + "'");
  if (!CudaCompiledIn()) {
    throw UserError(ErrorKind::kError, "device '" + spec + "': film-features was built against a CPU-only libtorch; " +
                                           "rebuild it against a CUDA libtorch (set LIBTORCH or Torch_DIR)", code::kDevice);
  }
  const int index = m[1].matched ? std::stoi(m[1]) : 0;
  const int count = CudaDeviceCount();
  if (index >= count) {
    throw UserError(ErrorKind::kError, "device '" + spec + "': " + std::to_string(count) + " CUDA device(s) present",
                    code::kDevice);
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::shared_ptr<Model> Model::Load(const LoadOptions& options) {
  FILM_RANGE_ERROR_IF(options.threads < 1, "threads must be at least 1");
  FILM_RANGE_ERROR_IF(options.engine != "auto" && options.engine != "onednn" && options.engine != "torchscript",
                      "Expected 'auto', 'onednn' or 'torchscript' for engine but received '" + options.engine + "'");
  FILM_RANGE_ERROR_IF(options.precision != "fp32" && options.precision != "bf16",
                      "Expected 'fp32' or 'bf16' for precision but received '" + options.precision + "'");
  const bool bf16 = options.precision == "bf16";
  FILM_RANGE_ERROR_IF(bf16 && options.engine == "torchscript",
                      "precision 'bf16' runs on the oneDNN engine, and engine is 'torchscript'");
  FILM_RANGE_ERROR_IF(bf16 && options.half, "precision 'bf16' and half: true exclude each other");
  const c10::Device device = ResolveDevice(options.device, options.half);
  FILM_RANGE_ERROR_IF(options.engine == "onednn" && !device.is_cpu(),
                      "engine 'onednn' runs on the CPU, and device is " + device.str());
  FILM_RANGE_ERROR_IF(bf16 && !device.is_cpu(), "precision 'bf16' runs on the CPU, and device is " + device.str());
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
  c10::InferenceMode inference;

  torch::jit::ExtraFilesMap extra{{kMetadataFile, ""}};
  torch::jit::Module root = LoadScriptFile(options.path, &extra);

  ModelInfo info;
  info.weights = JsonStringField(extra[kMetadataFile], "weights", "unknown");
  torch::jit::Module extractor = root;
  if (root.hasattr("extract") && root.attr("extract").isModule()) {
    extractor = root.attr("extract").toModule();
    info.source = "interpolator";
  } else if (root.hasattr("extract_sublevels")) {
    info.source = "extractor";
  } else {
    throw UserError(ErrorKind::kError, "'" + options.path + "' is not a FILM feature extractor: it has neither " +
                                           "'extract_sublevels' nor an 'extract' submodule (found: " +
                                           ChildNames(root) + ")");
  }
  CheckSignature(extractor, options.path);
  InspectWeights(extractor, options.path, &info);

  // fp16 files run in float32 on CPU: CPU half convolution is slow or missing.
  extractor.to(device, options.half ? at::kHalf : at::kFloat);
  extractor.eval();
  std::shared_ptr<Model> model(new Model(extractor, options.path, device, info, options.threads, options.half));
  if (device.is_cpu() && options.engine != "torchscript" && model->UseOnednn(extractor, options)) return model;
  FILM_ERROR_IF(bf16, "'" + options.path + "': precision 'bf16' needs the oneDNN engine, which cannot run this file");

  model->info_.engine = "torchscript";
  try {
    torch::jit::Module frozen = torch::jit::freeze(extractor);
    ReplaceSamePadding(frozen);
    model->module_ = torch::jit::optimize_for_inference(frozen);
    model->info_.optimized = true;
  } catch (...) {
    // Left unoptimized: slower, same numbers.
  }

  // Warm-up: the first runs of a TorchScript graph profile and specialise it.
  std::vector<at::Tensor> pyramid;
  for (int64_t size = 64; size >= 1; size /= 2) pyramid.push_back(at::zeros({1, 3, size, size}));
  for (int i = 0; i < 2; ++i) model->Run(pyramid, pyramid.size(), 1);
  return model;
}

std::vector<at::Tensor> Model::Run(const std::vector<at::Tensor>& pyramid, size_t levels, int threads, bool nhwc) const {
  FILM_RANGE_ERROR_IF(pyramid.empty() || levels < pyramid.size(), "a run needs at least one level");
  c10::InferenceMode inference;
  if (device_.is_cpu()) {
    // This thread's own OpenMP setting: concurrent runs on other threads keep theirs.
    SetCallerThreads(threads > 0 ? threads : threads_);
    return Forward(pyramid, levels, nhwc);
  }
#ifdef FILM_WITH_CUDA
  // CUDA: a stream of this run's own, and copies both ways through a bounded pinned staging set
  // (cuda_staging.h): outputs land in pageable memory sized exactly.
  const c10::Stream stream = c10::impl::VirtualGuardImpl(device_.type()).getStreamFromGlobalPool(device_);
  c10::StreamGuard stream_guard(stream);
  cuda::Staging staging(device_);
  return staging.Download(Forward(staging.Upload(pyramid), levels, nhwc));
#else
  throw UserError(ErrorKind::kError, "device " + device_name() + ": this build runs on the CPU only");
#endif
}

std::vector<at::Tensor> Model::Forward(const std::vector<at::Tensor>& pyramid, size_t levels, bool nhwc) const {
  const at::ScalarType dtype = half_ ? at::kHalf : at::kFloat;
  c10::List<at::Tensor> inputs;
  for (const auto& level : pyramid) inputs.push_back(level.to(device_, dtype));
  while (inputs.size() < levels) {
    inputs.push_back(at::avg_pool2d(inputs.get(inputs.size() - 1), /*kernel_size=*/{2, 2}, /*stride=*/{2, 2}));
  }

#ifdef FILM_WITH_ONEDNN
  if (fused_) {
    std::vector<at::Tensor> contiguous;
    for (size_t i = 0; i < inputs.size(); ++i) contiguous.push_back(inputs.get(i).contiguous());
    return fused_->Run(contiguous, nhwc ? onednn::Layout::kNhwc : onednn::Layout::kNchw);
  }
#endif
  c10::IValue result;
  try {
    result = module_.forward({c10::IValue(inputs)});
  } catch (...) {
    RethrowAsScriptFailure(path_, "extracting features of a " + c10::str(inputs.get(0).sizes()) + " pyramid");
  }
  FILM_ERROR_IF(!result.isTensorList(), "the model's forward returned " + result.tagKind() + ", not a list of tensors");
  c10::List<at::Tensor> outputs = result.toTensorList();
  FILM_ERROR_IF(outputs.size() != levels, "the model returned " + std::to_string(outputs.size()) +
                                              " levels for a pyramid of " + std::to_string(levels));
  std::vector<at::Tensor> features;
  features.reserve(levels);
  for (at::Tensor t : outputs) {
    if (t.is_mkldnn()) t = t.to_dense();
    t = t.to(device_, at::kFloat);
    features.push_back(nhwc ? t.permute({0, 2, 3, 1}).contiguous() : t.contiguous());
  }
  return features;
}

bool Model::UseOnednn(const torch::jit::Module& extractor, const LoadOptions& options) {
  const bool bf16 = options.precision == "bf16";
  const bool forced = options.engine == "onednn" || bf16;
#ifdef FILM_WITH_ONEDNN
  std::shared_ptr<const onednn::Engine> engine;
  try {
    engine = std::make_shared<const onednn::Engine>(onednn::ReadConvWeights(extractor, info_.sub_levels),
                                                    bf16 ? onednn::Precision::kBf16 : onednn::Precision::kF32);
  } catch (...) {
    if (!forced) return false;  // auto: the TorchScript path runs it
    ErrorKind kind;
    throw UserError(ErrorKind::kError, "'" + options.path + "': engine 'onednn' failed to prepare: " +
                                           FirstLine(DescribeCurrentException(&kind)));
  }
  // The engine runs FILM's network from the file's weights; check that this file's forward is that
  // network, on a 64x64 frame with 7 levels, against the module itself (unoptimized). bf16 keeps
  // 8 bits of mantissa: it is checked to what that allows (README, "Precision"), which still
  // tells another network apart.
  const double tolerance = bf16 ? 5e-2 : 1e-4;
  std::vector<at::Tensor> pyramid{at::arange(3 * 64 * 64, at::kFloat).mul(0.37).sin().abs().reshape({1, 3, 64, 64})};
  const std::vector<at::Tensor> expected = Run(pyramid, 7, 1);
  fused_ = engine;
  const std::vector<at::Tensor> got = Run(pyramid, 7, 1);
  for (size_t i = 0; i < expected.size(); ++i) {
    const double scale = std::max(expected[i].abs().max().item<double>(), 1e-12);
    const double error = (got[i] - expected[i]).abs().max().item<double>() / scale;
    if (!(error <= tolerance)) {
      fused_.reset();
      FILM_ERROR_IF(forced, "'" + options.path + "': engine 'onednn' does not reproduce this file's forward (level " +
                                std::to_string(i) + " differs by " + std::to_string(error) +
                                " relative); use engine 'torchscript'");
      return false;
    }
  }
  info_.engine = "onednn";
  info_.isa = onednn::Engine::Isa();
  info_.onednn = onednn::Engine::Version();
  info_.precision = options.precision;
  info_.optimized = true;
  return true;
#else
  (void)extractor;
  FILM_ERROR_IF(forced, "engine 'onednn': this build of film-features has no oneDNN engine "
                        "(apt-get install libdnnl-dev, then rebuild)");
  return false;
#endif
}

void ReleaseCachedMemory() {
#ifdef FILM_WITH_CUDA
  c10::cuda::CUDACachingAllocator::emptyCache();
  cuda::ReleasePinnedMemory();
#endif
}

}  // namespace film
