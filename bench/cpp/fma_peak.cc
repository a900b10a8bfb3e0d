// fma_peak ISA THREADS [SECONDS]: the machine's fp32 FMA peak for an instruction set, the figure the
// bench divides by. ISA is avx2 (8 lanes) or avx512 (16 lanes; also for avx512_core and its kin).
// Each thread runs independent FMA chains, enough of them to hide the latency of two FMA units; the
// best of 5 rounds is printed as {"isa": ..., "threads": ..., "gflops": ..., "gflops_per_cpu_second": ...}:
// wall-clock GFLOP/s of all threads, and GFLOP per second of CPU time one thread got (on a shared
// machine, the second is what a core does when it runs, whatever the other tenants take).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 12;

typedef float Floats8 __attribute__((vector_size(32)));
typedef float Floats16 __attribute__((vector_size(64)));

// kChains FMA chains on vectors V, in the instruction set of the function it is inlined into.
// acc * a + b is one FMA there: GCC contracts it (-std=gnu++17 and c++17 alike; `objdump -d
// fma_peak` shows 12 vfmadd per loop, as the intrinsics did).
template <typename V>
__attribute__((always_inline)) inline float Chains(long iterations) {
  V acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = V{} + (1.f + i * 1e-3f);
  const V a = V{} + 0.999999f, b = V{} + 1e-7f;
  for (long n = 0; n < iterations; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * a + b;
  }
  // Every chain feeds the result: a chain left out is dead code to the compiler (it dropped 10 of 12).
  V sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum += acc[i];
  float out = 0;
  for (unsigned lane = 0; lane < sizeof(V) / sizeof(float); ++lane) out += sum[lane];
  return out;
}

__attribute__((target("avx2,fma"))) float Avx2(long iterations) { return Chains<Floats8>(iterations); }

__attribute__((target("avx512f"))) float Avx512(long iterations) { return Chains<Floats16>(iterations); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fma_peak avx2|avx512 THREADS [SECONDS]\n");
    return 2;
  }
  const std::string isa = argv[1];
  const int threads = std::stoi(argv[2]);
  const double seconds = argc > 3 ? std::stod(argv[3]) : 0.3;
  const bool wide = isa.rfind("avx512", 0) == 0;
  if (wide ? !__builtin_cpu_supports("avx512f") : !__builtin_cpu_supports("avx2")) {
    std::fprintf(stderr, "fma_peak: this CPU has no %s\n", isa.c_str());
    return 1;
  }
  const int lanes = wide ? 16 : 8;
  // Iterations per thread for about `seconds`, from a short calibration run.
  auto run = [&](long iterations) { return wide ? Avx512(iterations) : Avx2(iterations); };
  auto t0 = std::chrono::steady_clock::now();
  volatile float sink = run(1 << 20);
  const double calib = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long iterations = std::max(1L, static_cast<long>((1 << 20) * seconds / std::max(calib, 1e-6)));

  const double flops = 2.0 * lanes * kChains * static_cast<double>(iterations);  // per thread
  double best = 0, best_cpu = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<std::thread> pool;
    std::atomic<float> total{0};
    std::vector<double> cpu(threads);
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        total = total + run(iterations);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        cpu[t] = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
      });
    }
    for (auto& t : pool) t.join();
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    sink = total;
    best = std::max(best, flops * threads / took / 1e9);
    for (double c : cpu) best_cpu = std::max(best_cpu, flops / c / 1e9);
  }
  (void)sink;
  std::printf("{\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f,\"gflops_per_cpu_second\":%.1f}\n",
              wide ? "avx512" : "avx2", threads, best, best_cpu);
  return 0;
}
