// The file's own TorchScript extractor, run by libtorch: on CUDA, with engine 'torchscript', and as
// the reference the oneDNN engine is checked against at load. The full build only.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "model.h"
#include "script_model.h"

namespace film {

class ScriptExtractor : public ScriptRunner, public ScriptModel {
 public:
  // Loads the file's module (its `extract` submodule for a whole interpolator) on device, checks
  // its forward's signature; optimize: frozen, optimized for inference and warmed up.
  static std::shared_ptr<ScriptExtractor> Load(const LoadOptions& options, const c10::Device& device, bool optimize,
                                               ModelInfo* info);

  std::vector<Tensor> Run(const std::vector<Tensor>& pyramid, size_t levels, bool nhwc) const override;

 private:
  using ScriptModel::ScriptModel;
  std::vector<at::Tensor> Forward(const std::vector<at::Tensor>& pyramid, size_t levels, bool nhwc) const;
};

}  // namespace film
