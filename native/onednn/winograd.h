// A 3x3 convolution (stride 1, zero padding 1) fused with its bias and LeakyReLU(0.2), computed by
// Winograd's F(2x2, 3x3): each 4x4 input tile is transformed, the 16 transformed planes are
// multiplied by the transformed weights (one oneDNN batched matmul per block of tiles, which stays
// in L2), and each product is transformed back to a 2x2 output tile. 2.25x fewer multiplications
// than a direct convolution. NHWC float32 in and out; with bf16, the transformed tiles and weights
// are rounded to bfloat16 for the product, which sums in float32.
#pragma once

#include "../tensor.h"
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstring>
#include <memory>

namespace film {
namespace onednn {

// float32 -> bfloat16 bits, rounded to nearest even (the engine's one rounding: Winograd's tiles and
// FilmNet's bfloat16 inputs).
inline uint16_t RoundToBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

class Winograd {
 public:
  // Whether a layer of `in` -> `out` channels runs this way (the 3-channel first one does not).
  static bool Suits(int64_t in, int64_t out);

  // oihw: [out, in, 3, 3], bias: [out], both float32. The weights are transformed once, here.
  // bf16: the product in bfloat16 (the CPU must have it: Engine::HasBf16()).
  Winograd(const dnnl::engine& engine, const Tensor& oihw, const Tensor& bias, bool bf16 = false);
  ~Winograd();

  // A run on n frames of h x w: its blocks of tiles and their product, made once. Null where a frame
  // has too few tiles to gain (run the direct convolution then), unless any_size.
  struct Plan;
  std::shared_ptr<const Plan> PlanFor(int64_t n, int64_t h, int64_t w, bool any_size = false) const;

  // src: [n, h, w, in], dense, and dst: [n, h, w, out] with pixels dst_pixel floats apart (0: out,
  // dense; more: a channel range of a wider NHWC tensor), float32, for the plan's n, h, w. Runs on
  // the calling thread's OpenMP threads. Thread-safe.
  void Run(const Plan& plan, const float* src, float* dst, int64_t dst_pixel = 0) const;

 private:
  dnnl::engine engine_;
  int64_t in_, out_;
  bool bf16_;
  dnnl::memory::desc u_md_;  // the layout u_ is in: the matmul's choice for full blocks
  Tensor u_;             // the transformed weights [16, in, out], in u_md_
  Tensor bias_;          // float32
};

}  // namespace onednn
}  // namespace film
