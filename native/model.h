// A loaded FILM feature extractor: the TorchScript module, where it runs, and what it is.
// Pure libtorch; nothing here knows about JS.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

namespace film {

struct LoadOptions {
  std::string path;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 1;              // CPU intra-op threads for this model's runs
  bool half = false;            // fp16 weights and activations (CUDA only)
};

struct ModelInfo {
  std::string source;  // "extractor" or "interpolator"
  int64_t channels = 0;
  int64_t sub_levels = 0;
  std::string dtype;  // the weights' dtype in the file: "float32" or "float16"
  bool optimized = false;  // frozen + optimize_for_inference succeeded
  std::string weights;     // where the weights came from (export.py's metadata), or "unknown"
};

class Model {
 public:
  // Loads, checks and prepares a model; throws UserError for files that are not FILM extractors.
  static std::shared_ptr<Model> Load(const LoadOptions& options);

  // Runs the extractor on a pyramid of float32 CPU tensors [N, 3, H_i, W_i], finest first; levels
  // past the pyramid's are pooled from its coarsest on the model's device. Returns one contiguous
  // float32 CPU tensor per level. threads: CPU intra-op threads for this run (0: the model's).
  // Thread-safe.
  std::vector<at::Tensor> Run(const std::vector<at::Tensor>& pyramid, size_t levels, int threads = 0) const;

  const ModelInfo& info() const { return info_; }
  const c10::Device& device() const { return device_; }
  std::string device_name() const { return device_.str(); }
  int threads() const { return threads_; }

 private:
  std::vector<at::Tensor> Forward(const std::vector<at::Tensor>& pyramid, size_t levels) const;

  Model(torch::jit::Module module, c10::Device device, ModelInfo info, int threads, bool half)
      : module_(std::move(module)), device_(device), info_(std::move(info)), threads_(threads), half_(half) {}

  mutable torch::jit::Module module_;  // forward() is not const; runs do not change it
  c10::Device device_;
  ModelInfo info_;
  int threads_;
  bool half_;
};

// Device helpers shared with the binding.
bool CudaCompiledIn();
int CudaDeviceCount();
c10::Device ResolveDevice(const std::string& spec, bool half);
// Returns cached, unused accelerator memory to the driver; nothing on CPU.
void ReleaseCachedMemory();

}  // namespace film
