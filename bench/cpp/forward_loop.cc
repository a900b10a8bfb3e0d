// forward_loop MODEL THREADS BATCH H W LEVELS REPEATS
// Times the extractor's forward in plain libtorch, prepared exactly as native/model.cc prepares it
// for the CPU, and prints {"torch": ..., "threads": ..., "ms": [...]} on stdout.
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 8) {
    std::cerr << "usage: forward_loop MODEL THREADS BATCH H W LEVELS REPEATS\n";
    return 2;
  }
  const std::string path = argv[1];
  const int threads = std::stoi(argv[2]);
  const int64_t batch = std::stoll(argv[3]), h = std::stoll(argv[4]), w = std::stoll(argv[5]);
  const int levels = std::stoi(argv[6]), repeats = std::stoi(argv[7]);

  try {
    c10::InferenceMode inference;
    torch::jit::Module module = torch::jit::load(path, c10::Device(c10::kCPU));
    module.eval();
    at::set_num_threads(threads);
    torch::jit::Module frozen = torch::jit::freeze(module);
    module = torch::jit::optimize_for_inference(frozen);

    torch::manual_seed(0);
    c10::List<at::Tensor> pyramid;
    at::Tensor level = at::rand({batch, 3, h, w});
    for (int i = 0; i < levels; ++i) {
      pyramid.push_back(level);
      level = at::avg_pool2d(level, {2, 2}, {2, 2});
    }
    const std::vector<c10::IValue> inputs{c10::IValue(pyramid)};

    for (int i = 0; i < 2; ++i) module.forward(inputs);
    std::string ms;
    for (int i = 0; i < repeats; ++i) {
      const auto start = std::chrono::steady_clock::now();
      c10::IValue out = module.forward(inputs);
      const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
      if (!out.isTensorList() || out.toTensorList().size() != static_cast<size_t>(levels)) {
        std::cerr << "forward returned " << out.tagKind() << ", not " << levels << " tensors\n";
        return 1;
      }
      ms += (i ? "," : "") + std::to_string(took.count());
    }
    std::printf("{\"torch\":\"%s\",\"threads\":%d,\"ms\":[%s]}\n", TORCH_VERSION, at::get_num_threads(), ms.c_str());
  } catch (const std::exception& e) {  // IRAttributeError is not a c10::Error
    std::cerr << "forward_loop: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
