// winograd_product THREADS: oneDNN's batched matmul at the shapes of the engine's Winograd product
// (native/onednn/winograd.cc: 16 planes, a block of tiles by `in` channels, times `in` x `out`),
// in float32 (128 tiles a block) and with bfloat16 inputs and weights (256 tiles, float32 out), each
// thread running its own product as Winograd::Run does. Prints a JSON line per shape: GFLOP/s of
// both and their ratio, the most bfloat16 can gain there.
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

using dnnl::memory;

double Gflops(const dnnl::engine& engine, int64_t tiles, int64_t in, int64_t out, memory::data_type type) {
  const memory::desc src({16, tiles, in}, type, memory::format_tag::abc);
  const memory::desc dst({16, tiles, out}, memory::data_type::f32, memory::format_tag::abc);
  const memory::desc any({16, in, out}, type, memory::format_tag::any);
#if DNNL_VERSION_MAJOR >= 3
  const dnnl::matmul::primitive_desc pd(engine, src, any, dst);
#else
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, any, dst), engine);
#endif
  const dnnl::matmul product(pd);
  const memory weights(pd.weights_desc(), engine);
  const double flop = 2.0 * 16 * tiles * in * out;
  const int repeats = std::max(1, static_cast<int>(4e9 / flop));
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel
    {
      dnnl::stream stream(engine);
      memory a(src, engine), c(dst, engine);
      for (int r = 0; r < repeats; ++r) product.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, c}});
      stream.wait();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, flop * repeats * omp_get_max_threads() / seconds / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::atoi(argv[1]) < 1) {
    std::fprintf(stderr, "usage: winograd_product THREADS\n");
    return 2;
  }
  omp_set_num_threads(std::atoi(argv[1]));
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  // FILM's: the extractor's stages, the flow predictors' layers, the fusion's widest inputs
  const int64_t shapes[][2] = {{64, 64}, {128, 128}, {256, 256}, {512, 512}, {960, 128}, {1920, 256}, {1219, 128}};
  for (const auto& s : shapes) {
    const double f32 = Gflops(engine, 128, s[0], s[1], memory::data_type::f32);
    const double bf16 = Gflops(engine, 256, s[0], s[1], memory::data_type::bf16);
    std::printf("{\"in\": %lld, \"out\": %lld, \"f32_gflops\": %.1f, \"bf16_gflops\": %.1f, \"ratio\": %.2f}\n",
                static_cast<long long>(s[0]), static_cast<long long>(s[1]), f32, bf16, bf16 / f32);
  }
  return 0;
}
