// A loaded FILM feature extractor: its weights (read by the package's own reader, lib/model-file/,
// and handed over as float32), what runs them, and what it is. The fused oneDNN engine runs it on
// the CPU in every build; the libtorch backend (native/torch/, the full build only) runs the
// file's own TorchScript: on CUDA, with engine 'torchscript', and where the engine cannot.
// Nothing here knows about JS.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tensor.h"

namespace film {

namespace onednn {
class Engine;
}

struct ConvWeights {
  Tensor weight;  // float32 [out, in, 3, 3]
  Tensor bias;    // float32 [out]
};

// FILM's extractor as the reader found it in the file (lib/model-file/film-weights.ts checked its
// names and shapes).
struct ExtractorWeights {
  std::string source;  // "extractor" or "interpolator" (the file is a whole FILM; its `extract`)
  std::string format;  // "torchscript", "torch.save" or "safetensors"
  std::string dtype;   // as stored: "float32", "float16" or "bfloat16"
  std::string origin;  // where the weights came from (export.py's metadata), or "unknown"
  int64_t channels = 0;
  std::vector<std::array<ConvWeights, 2>> stages;  // stages[j][k]: convolution k of stage j
};

// A whole FILM interpolator as the reader found it: every floating-point tensor, as float32, by name.
struct InterpolatorWeights {
  std::string format;  // "torchscript", "torch.save" or "safetensors"
  std::string dtype;   // as stored
  int levels = 7;      // the image pyramid's depth (the file's pyramid_levels; FILM's is 7)
  std::map<std::string, Tensor> tensors;
};

struct LoadOptions {
  std::string path;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 1;              // CPU intra-op threads for this model's runs
  bool half = false;            // fp16 weights and activations (CUDA only)
  std::string engine = "auto";  // CPU: auto | onednn | torchscript (auto: oneDNN where built in)
  std::string precision = "fp32";  // fp32 | bf16 (the oneDNN engine, where its ISA has bf16)
  ExtractorWeights weights;     // the extractor's; its stages are empty for an Interpolator
  InterpolatorWeights film;     // an Interpolator's
};

// Checks threads, engine, and precision against the engine, half, device and this CPU (RangeError,
// or ERR_FILM_PRECISION where the CPU or the build has no bf16); returns the resolved device.
std::string CheckLoadOptions(const LoadOptions& options);

struct ModelInfo {
  std::string source;  // "extractor" or "interpolator"
  std::string format;  // the file's format, as the reader found it
  int64_t channels = 0;
  int64_t sub_levels = 0;
  std::string dtype;  // the weights' dtype in the file: "float32", "float16" or "bfloat16"
  bool optimized = false;  // prepared for fast inference: the oneDNN engine, or a frozen, optimized graph
  std::string engine;      // what runs it: "onednn" or "torchscript"
  bool code_run = false;   // the file's TorchScript code was run (libtorch loaded it)
  std::string isa;         // the instruction set oneDNN's kernels use ("avx2", "avx512_core"); oneDNN only
  std::string onednn;      // the version of the oneDNN library running it ("3.6.2"); oneDNN only
  std::string precision = "fp32";  // what the convolutions compute in: "fp32" or "bf16"
  std::string weights;     // where the weights came from (export.py's metadata), or "unknown"
};

// The file's own forward, run by libtorch (torch/script_extractor.h).
class ScriptRunner {
 public:
  virtual ~ScriptRunner() = default;
  // As Model::Run, on the runner's device; the caller has set this thread's CPU threads.
  virtual std::vector<Tensor> Run(const std::vector<Tensor>& pyramid, size_t levels, bool nhwc) const = 0;
};

class Model {
 public:
  // Loads, checks and prepares a model; throws UserError for files that are not FILM extractors,
  // and ERR_FILM_NEEDS_LIBTORCH for what only the libtorch backend runs, in a build without it.
  static std::shared_ptr<Model> Load(const LoadOptions& options);

  // Runs the extractor on a pyramid of float32 CPU tensors [N, 3, H_i, W_i], finest first; levels
  // past the pyramid's are pooled from its coarsest. Returns one contiguous float32 CPU tensor per
  // level, [N, C, H, W] or, with nhwc, [N, H, W, C]. threads: CPU threads for this run (0: the
  // model's). Thread-safe.
  std::vector<Tensor> Run(const std::vector<Tensor>& pyramid, size_t levels, int threads = 0, bool nhwc = false) const;

  const ModelInfo& info() const { return info_; }
  const std::string& device_name() const { return device_; }
  bool is_cpu() const { return device_ == "cpu"; }
  int threads() const { return threads_; }

 private:
  Model(std::string device, int threads, ModelInfo info)
      : device_(std::move(device)), threads_(threads), info_(std::move(info)) {}
  // Prepares the oneDNN engine from the weights; false (or, for engine 'onednn', an Error) where it cannot.
  bool UseOnednn(const LoadOptions& options);
  // Whether the engine reproduces the file's forward, on a 64x64 frame with 7 levels; false (or,
  // forced, an Error) where it does not.
  bool EngineMatchesScript(const LoadOptions& options, bool forced);

  std::string device_;  // "cpu", "cuda:0", ...
  int threads_;
  ModelInfo info_;
  std::shared_ptr<const onednn::Engine> fused_;   // CPU runs go here when set
  std::shared_ptr<const ScriptRunner> script_;  // else here
};

// The fused oneDNN CPU engine is built in.
bool OnednnCompiledIn();

}  // namespace film
