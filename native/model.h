// A loaded FILM feature extractor: the TorchScript module, where it runs, and what it is.
// Pure libtorch; nothing here knows about JS.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "script_model.h"

namespace film {

namespace onednn {
class Engine;
}

struct LoadOptions {
  std::string path;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 1;              // CPU intra-op threads for this model's runs
  bool half = false;            // fp16 weights and activations (CUDA only)
  std::string engine = "auto";  // CPU: auto | onednn | torchscript (auto: oneDNN where built in)
  std::string precision = "fp32";  // fp32 | bf16 (the oneDNN engine, where its ISA has bf16)
};

struct ModelInfo {
  std::string source;  // "extractor" or "interpolator"
  int64_t channels = 0;
  int64_t sub_levels = 0;
  std::string dtype;  // the weights' dtype in the file: "float32" or "float16"
  bool optimized = false;  // prepared for fast inference: the oneDNN engine, or a frozen, optimized graph
  std::string engine;      // what runs it: "onednn" or "torchscript"
  std::string isa;         // the instruction set oneDNN's kernels use ("avx2", "avx512_core"); oneDNN only
  std::string onednn;      // the version of the oneDNN library running it ("3.6.2"); oneDNN only
  std::string precision = "fp32";  // what the convolutions compute in: "fp32" or "bf16"
  std::string weights;     // where the weights came from (export.py's metadata), or "unknown"
};

class Model : public ScriptModel {
 public:
  // Loads, checks and prepares a model; throws UserError for files that are not FILM extractors.
  static std::shared_ptr<Model> Load(const LoadOptions& options);

  // Runs the extractor on a pyramid of float32 CPU tensors [N, 3, H_i, W_i], finest first; levels
  // past the pyramid's are pooled from its coarsest on the model's device. Returns one contiguous
  // float32 CPU tensor per level, [N, C, H, W] or, with nhwc, [N, H, W, C]. threads: CPU intra-op
  // threads for this run (0: the model's). Thread-safe.
  std::vector<at::Tensor> Run(const std::vector<at::Tensor>& pyramid, size_t levels, int threads = 0,
                              bool nhwc = false) const;

  const ModelInfo& info() const { return info_; }

 private:
  std::vector<at::Tensor> Forward(const std::vector<at::Tensor>& pyramid, size_t levels, bool nhwc) const;
  // Prepares the oneDNN engine, checked against the TorchScript module on a small frame; false
  // (or, for engine 'onednn', an Error) when the file's graph is not the network the engine runs.
  bool UseOnednn(const torch::jit::Module& extractor, const LoadOptions& options);

  Model(torch::jit::Module module, std::string path, c10::Device device, ModelInfo info, int threads, bool half)
      : ScriptModel(std::move(module), std::move(path), device, threads, half), info_(std::move(info)) {}

  ModelInfo info_;
  std::shared_ptr<const onednn::Engine> fused_;  // CPU runs go here when set
};

// Device helpers shared with the binding.
bool CudaCompiledIn();
bool OnednnCompiledIn();  // the fused oneDNN CPU engine is built in
int CudaDeviceCount();
c10::Device ResolveDevice(const std::string& spec, bool half);
// Returns cached, unused accelerator memory to the driver; nothing on CPU.
void ReleaseCachedMemory();

}  // namespace film
