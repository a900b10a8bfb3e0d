// forward_loop MODEL THREADS BATCH H W LEVELS REPEATS [torchscript|onednn [fp32|bf16 [nchw|nhwc]]]
// Times the extractor in a bare C++ loop, prepared as native/model.cc prepares it for the CPU:
// - torchscript (default): frozen + optimize_for_inference, then module.forward;
// - onednn: the weights handed to native/onednn's engine, then Engine::Run.
// Prints {"engine": ..., "threads": ..., "first": ms, "ms": [...]} on stdout; "first" is the first
// call, which builds the engine's primitives for the size.
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#ifdef FILM_WITH_ONEDNN
#include "onednn/engine.h"
#include "onednn/weights.h"
#endif

namespace {

double Millis(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

int64_t SubLevels(const torch::jit::Module& extractor) {
  int64_t stages = 0;
  while (extractor.hasattr("extract_sublevels") &&
         extractor.attr("extract_sublevels").toModule().attr("convs").toModule().hasattr(std::to_string(stages))) {
    ++stages;
  }
  return stages;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 8 || argc > 11) {
    std::cerr << "usage: forward_loop MODEL THREADS BATCH H W LEVELS REPEATS [torchscript|onednn [fp32|bf16 [nchw|nhwc]]]\n";
    return 2;
  }
  const std::string path = argv[1];
  const int threads = std::stoi(argv[2]);
  const int64_t batch = std::stoll(argv[3]), h = std::stoll(argv[4]), w = std::stoll(argv[5]);
  const int levels = std::stoi(argv[6]), repeats = std::stoi(argv[7]);
  const std::string engine = argc >= 9 ? argv[8] : "torchscript";
  const std::string precision = argc >= 10 ? argv[9] : "fp32";
  const std::string layout = argc >= 11 ? argv[10] : "nchw";
  if ((precision != "fp32" && precision != "bf16") || (layout != "nchw" && layout != "nhwc")) {
    std::cerr << "forward_loop: precision is fp32 or bf16, layout nchw or nhwc\n";
    return 2;
  }

  try {
    c10::InferenceMode inference;
    torch::jit::Module module = torch::jit::load(path, c10::Device(c10::kCPU));
    if (module.hasattr("extract") && module.attr("extract").isModule()) module = module.attr("extract").toModule();
    module.to(at::kFloat);
    module.eval();
    at::set_num_threads(threads);

    torch::manual_seed(0);
    std::vector<at::Tensor> pyramid;
    at::Tensor level = at::rand({batch, 3, h, w});
    for (int i = 0; i < levels; ++i) {
      pyramid.push_back(level);
      level = at::avg_pool2d(level, {2, 2}, {2, 2});
    }

    std::function<size_t()> run;
    std::string isa = "";
    const std::vector<c10::IValue> inputs{c10::IValue(c10::List<at::Tensor>(pyramid))};
    if (engine == "torchscript") {
      torch::jit::Module frozen = torch::jit::freeze(module);
      module = torch::jit::optimize_for_inference(frozen);
      run = [&]() { return module.forward(inputs).toTensorList().size(); };
    } else if (engine == "onednn") {
#ifdef FILM_WITH_ONEDNN
      const auto type = precision == "bf16" ? film::onednn::Precision::kBf16 : film::onednn::Precision::kF32;
      auto fused = std::make_shared<film::onednn::Engine>(film::onednn::ReadConvWeights(module, SubLevels(module)), type);
      isa = film::onednn::Engine::Isa();
      const auto order = layout == "nhwc" ? film::onednn::Layout::kNhwc : film::onednn::Layout::kNchw;
      run = [&, fused, order]() { return fused->Run(pyramid, order).size(); };
#else
      std::cerr << "forward_loop: built without oneDNN\n";
      return 1;
#endif
    } else {
      std::cerr << "forward_loop: unknown engine '" << engine << "'\n";
      return 2;
    }

    size_t count = 0;
    const double first = Millis([&] { count = run(); });
    if (count != static_cast<size_t>(levels)) {
      std::cerr << "forward returned " << count << " levels, not " << levels << "\n";
      return 1;
    }
    run();
    // Marks where the timed calls start in the output, for bench/profile.js (ONEDNN_VERBOSE=1).
    std::printf("forward_loop: timed calls\n");
    std::fflush(stdout);
    std::string ms;
    for (int i = 0; i < repeats; ++i) ms += (i ? "," : "") + std::to_string(Millis([&] { run(); }));
    std::printf("{\"engine\":\"%s\",\"precision\":\"%s\",\"isa\":\"%s\",\"torch\":\"%s\",\"threads\":%d,\"first\":%f,\"ms\":[%s]}\n",
                engine.c_str(), precision.c_str(), isa.c_str(), TORCH_VERSION, at::get_num_threads(), first, ms.c_str());
  } catch (const std::exception& e) {  // IRAttributeError is not a c10::Error; dnnl::error is std::exception
    std::cerr << "forward_loop: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
