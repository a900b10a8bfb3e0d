#include "script_extractor.h"

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#ifdef FILM_WITH_CUDA
#include "cuda_staging.h"
#endif

#include <sstream>

#include "aten_tensor.h"
#include "errors.h"
#include "model_file.h"
#include "same_padding.h"
#include "script_error.h"

namespace film {
namespace {

std::string ChildNames(const torch::jit::Module& module) {
  std::string names;
  for (const auto& child : module.named_children()) names += (names.empty() ? "" : ", ") + child.name;
  return names.empty() ? "none" : names;
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

std::shared_ptr<ScriptExtractor> ScriptExtractor::Load(const LoadOptions& options, const c10::Device& device,
                                                       bool optimize, ModelInfo* info) {
  c10::InferenceMode inference;
  torch::jit::Module root = LoadScriptFile(options.path);
  torch::jit::Module extractor = root;
  if (root.hasattr("extract") && root.attr("extract").isModule()) {
    extractor = root.attr("extract").toModule();
  } else if (!root.hasattr("extract_sublevels")) {
    throw UserError(ErrorKind::kError, "'" + options.path + "' is not a FILM feature extractor: it has neither " +
                                           "'extract_sublevels' nor an 'extract' submodule (found: " +
                                           ChildNames(root) + ")");
  }
  CheckSignature(extractor, options.path);
  // fp16 files run in float32 on CPU: CPU half convolution is slow or missing.
  extractor.to(device, options.half ? at::kHalf : at::kFloat);
  extractor.eval();
  std::shared_ptr<ScriptExtractor> model(
      new ScriptExtractor(extractor, options.path, device, options.threads, options.half));
  info->code_run = true;
  if (!optimize) return model;

  info->engine = "torchscript";
  info->isa.clear();
  info->onednn.clear();
  info->optimized = false;
  try {
    torch::jit::Module frozen = torch::jit::freeze(extractor);
    ReplaceSamePadding(frozen);
    model->module_ = torch::jit::optimize_for_inference(frozen);
    info->optimized = true;
  } catch (...) {
    // Left unoptimized: slower, same numbers.
  }
  // Warm-up: the first runs of a TorchScript graph profile and specialise it.
  std::vector<Tensor> pyramid;
  for (int64_t size = 64; size >= 1; size /= 2) pyramid.push_back(Tensor::Zeros({1, 3, size, size}));
  for (int i = 0; i < 2; ++i) model->Run(pyramid, pyramid.size(), false);
  return model;
}

std::vector<Tensor> ScriptExtractor::Run(const std::vector<Tensor>& pyramid, size_t levels, bool nhwc) const {
  c10::InferenceMode inference;
  std::vector<at::Tensor> inputs;
  for (const Tensor& level : pyramid) inputs.push_back(ToAten(level));
  std::vector<at::Tensor> outputs;
  if (device_.is_cpu()) {
    outputs = Forward(inputs, levels, nhwc);
  } else {
#ifdef FILM_WITH_CUDA
    // CUDA: a stream of this run's own, and copies both ways through a bounded pinned staging set
    // (cuda_staging.h): outputs land in pageable memory sized exactly.
    const c10::Stream stream = c10::impl::VirtualGuardImpl(device_.type()).getStreamFromGlobalPool(device_);
    c10::StreamGuard stream_guard(stream);
    cuda::Staging staging(device_);
    outputs = staging.Download(Forward(staging.Upload(inputs), levels, nhwc));
#else
    throw UserError(ErrorKind::kError, "device " + device_name() + ": this build runs on the CPU only");
#endif
  }
  std::vector<Tensor> features;
  features.reserve(outputs.size());
  for (at::Tensor& t : outputs) features.push_back(FromAten(std::move(t)));
  return features;
}

std::vector<at::Tensor> ScriptExtractor::Forward(const std::vector<at::Tensor>& pyramid, size_t levels, bool nhwc) const {
  const at::ScalarType dtype = half_ ? at::kHalf : at::kFloat;
  c10::List<at::Tensor> inputs;
  for (const auto& level : pyramid) inputs.push_back(level.to(device_, dtype));
  while (inputs.size() < levels) {
    inputs.push_back(at::avg_pool2d(inputs.get(inputs.size() - 1), /*kernel_size=*/{2, 2}, /*stride=*/{2, 2}));
  }
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

}  // namespace film
