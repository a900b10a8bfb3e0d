// What every loaded TorchScript model holds: the module, its file (for error messages), its device,
// its CPU threads and whether it runs in fp16. Pure libtorch; nothing here knows about JS.
#pragma once

#include <torch/script.h>

#include <string>
#include <utility>

namespace film {

class ScriptModel {
 public:
  const c10::Device& device() const { return device_; }
  std::string device_name() const { return device_.str(); }
  bool is_cpu() const { return device_.is_cpu(); }
  int threads() const { return threads_; }

 protected:
  ScriptModel(torch::jit::Module module, std::string path, c10::Device device, int threads, bool half)
      : module_(std::move(module)), path_(std::move(path)), device_(device), threads_(threads), half_(half) {}

  mutable torch::jit::Module module_;  // forward() is not const; runs do not change it
  std::string path_;
  c10::Device device_;
  int threads_;
  bool half_;
};

}  // namespace film
