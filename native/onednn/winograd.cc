#include "winograd.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "compat.h"

namespace film {
namespace onednn {
namespace {

using dnnl::memory;
constexpr auto kF32 = memory::data_type::f32;
constexpr float kSlope = 0.2f;
constexpr int kPlanes = 16;          // a 4x4 tile
constexpr int64_t kMaxChannels = 4096;  // FILM's widest: fusion's 2442 input channels at full size
// Floats between planes beyond a block's own: keeps the 16 planes off the same cache sets
// (a 32 KiB stride put them there and made the input transform 2.5x slower).
constexpr int64_t kSkew = 16;

// Tiles per block where a frame has enough: the product then reuses each plane's weights over 128
// rows (measured: 16 or 32 rows left 512-channel layers bound by reading the weights).
constexpr int64_t kBlockTiles = 128;
// In bfloat16, whose tiles take half the bytes: 256 (1024x768 FILM 8% faster than 128, 512 4% slower).
constexpr int64_t kBlockTiles16 = 256;
// Fewer tiles than this in a whole run: the direct convolution does as well.
constexpr int64_t kMinTiles = 16;

inline float Keep(float x, float*) { return x; }
inline uint16_t Keep(float x, uint16_t*) { return RoundToBf16(x); }

// V = B^T d B for the 4x4 tile whose top left is (y0, x0), every channel: plane p of channel c at
// v[p * stride + c], as float32 or bfloat16 (T = uint16_t). Inlined into each ISA's clone below.
template <typename T>
__attribute__((always_inline)) inline void InputTileOf(const float* src, int64_t h, int64_t w, int64_t channels,
                                                       int64_t y0, int64_t x0, T* __restrict v, int64_t stride) {
  static const float zeros[kMaxChannels] = {};
  const float* d[4][4];
  for (int r = 0; r < 4; ++r) {
    for (int s = 0; s < 4; ++s) {
      const int64_t y = y0 + r, x = x0 + s;
      d[r][s] = y >= 0 && y < h && x >= 0 && x < w ? src + (y * w + x) * channels : zeros;
    }
  }
#pragma omp simd
  for (int64_t c = 0; c < channels; ++c) {
    float t[4][4];
    for (int s = 0; s < 4; ++s) {
      t[0][s] = d[0][s][c] - d[2][s][c];
      t[1][s] = d[1][s][c] + d[2][s][c];
      t[2][s] = d[2][s][c] - d[1][s][c];
      t[3][s] = d[1][s][c] - d[3][s][c];
    }
    for (int r = 0; r < 4; ++r) {
      v[(4 * r + 0) * stride + c] = Keep(t[r][0] - t[r][2], v);
      v[(4 * r + 1) * stride + c] = Keep(t[r][1] + t[r][2], v);
      v[(4 * r + 2) * stride + c] = Keep(t[r][2] - t[r][1], v);
      v[(4 * r + 3) * stride + c] = Keep(t[r][1] - t[r][3], v);
    }
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void InputTile(const float* src, int64_t h, int64_t w,
                                                                             int64_t channels, int64_t y0, int64_t x0,
                                                                             float* __restrict v, int64_t stride) {
  InputTileOf(src, h, w, channels, y0, x0, v, stride);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void InputTile(const float* src, int64_t h, int64_t w,
                                                                             int64_t channels, int64_t y0, int64_t x0,
                                                                             uint16_t* __restrict v, int64_t stride) {
  InputTileOf(src, h, w, channels, y0, x0, v, stride);
}

// Y = A^T M A + bias, then LeakyReLU, into the 2x2 output tile at (y0, x0), cut at the frame's edge;
// pixels `pixel` floats apart in dst.
__attribute__((target_clones("avx512f", "avx2", "default"))) void OutputTile(const float* __restrict m, int64_t stride,
                                                                              const float* __restrict bias,
                                                                              int64_t channels, float* dst, int64_t pixel,
                                                                              int64_t h, int64_t w, int64_t y0,
                                                                              int64_t x0) {
  const int rows = y0 + 1 < h ? 2 : 1, cols = x0 + 1 < w ? 2 : 1;
  float* out[2][2];
  for (int r = 0; r < 2; ++r) {
    for (int s = 0; s < 2; ++s) out[r][s] = dst + ((y0 + std::min(r, rows - 1)) * w + x0 + std::min(s, cols - 1)) * pixel;
  }
#pragma omp simd
  for (int64_t c = 0; c < channels; ++c) {
    float t[2][4];
    for (int s = 0; s < 4; ++s) {
      t[0][s] = m[s * stride + c] + m[(4 + s) * stride + c] + m[(8 + s) * stride + c];
      t[1][s] = m[(4 + s) * stride + c] - m[(8 + s) * stride + c] - m[(12 + s) * stride + c];
    }
    float y[2][2];
    for (int r = 0; r < 2; ++r) {
      y[r][0] = t[r][0] + t[r][1] + t[r][2] + bias[c];
      y[r][1] = t[r][1] - t[r][2] - t[r][3] + bias[c];
    }
    // Written back to front: where the tile is cut, the kept element is written last.
    for (int r = 1; r >= 0; --r) {
      for (int s = 1; s >= 0; --s) out[r][s][c] = y[r][s] > 0.f ? y[r][s] : kSlope * y[r][s];
    }
  }
}

// U = G g G^T for every (out, in) pair: plain [16, in, out]. Per input channel, the 9 taps are
// gathered for every output channel first, so that the transform runs along `out` in vectors and
// writes each plane in order (pair by pair, scalar, it took 65 of the 100 ms of loading the default model).
Tensor TransformWeights(const Tensor& oihw) {
  const int64_t out = oihw.size(0), in = oihw.size(1);
  Tensor u = Tensor::Empty({kPlanes, in, out});
  const float* g = oihw.data<float>();
  float* pu = u.data<float>();
#pragma omp parallel
  {
    std::vector<float> taps(static_cast<size_t>(9 * out));  // [9][out] of one input channel
    std::vector<float> rows(static_cast<size_t>(12 * out));  // t = G g: [4][3][out]
#pragma omp for
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t o = 0; o < out; ++o) {
        for (int e = 0; e < 9; ++e) taps[e * out + o] = g[(o * in + i) * 9 + e];
      }
      const float* k = taps.data();
      float* t = rows.data();
      for (int b = 0; b < 3; ++b) {
        const float *k0 = k + b * out, *k1 = k + (3 + b) * out, *k2 = k + (6 + b) * out;
        float *t0 = t + b * out, *t1 = t + (3 + b) * out, *t2 = t + (6 + b) * out, *t3 = t + (9 + b) * out;
#pragma omp simd
        for (int64_t o = 0; o < out; ++o) {
          t0[o] = k0[o];
          t1[o] = .5f * (k0[o] + k1[o] + k2[o]);
          t2[o] = .5f * (k0[o] - k1[o] + k2[o]);
          t3[o] = k2[o];
        }
      }
      for (int a = 0; a < 4; ++a) {
        const float *r0 = t + (3 * a) * out, *r1 = r0 + out, *r2 = r1 + out;
        float* p0 = pu + ((4 * a + 0) * in + i) * out;
        float* p1 = pu + ((4 * a + 1) * in + i) * out;
        float* p2 = pu + ((4 * a + 2) * in + i) * out;
        float* p3 = pu + ((4 * a + 3) * in + i) * out;
#pragma omp simd
        for (int64_t o = 0; o < out; ++o) {
          p0[o] = r0[o];
          p1[o] = .5f * (r0[o] + r1[o] + r2[o]);
          p2[o] = .5f * (r0[o] - r1[o] + r2[o]);
          p3[o] = r2[o];
        }
      }
    }
  }
  return u;
}

// The 16 planes of a block of `tiles` tiles of `channels`, skewed apart.
memory::desc Planes(int64_t tiles, int64_t channels, memory::data_type type = kF32) {
  return memory::desc({kPlanes, tiles, channels}, type, memory::dims{tiles * channels + kSkew, channels, 1});
}

dnnl::matmul::primitive_desc ProductPd(const dnnl::engine& engine, int64_t tiles, int64_t in, int64_t out, bool bf16) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto type = bf16 ? memory::data_type::bf16 : kF32;
  return compat::MatmulPd(engine, Planes(tiles, in, type), memory::desc({kPlanes, in, out}, type, memory::format_tag::any),
                          Planes(tiles, out), attr);
}

void Reorder(const dnnl::engine& engine, const memory::desc& from_md, void* from, const memory::desc& to_md, void* to) {
  memory a(from_md, engine, from), b(to_md, engine, to);
  dnnl::stream stream(engine);
  dnnl::reorder(a, b).execute(stream, a, b);
  stream.wait();
}

Tensor Floats(const memory::desc& md) { return Tensor::Empty({static_cast<int64_t>(md.get_size() / sizeof(float)) + 1}); }

}  // namespace

struct Winograd::Plan {
  int64_t n, h, w;
  int64_t total, blocks, tiles;  // tiles in all, blocks, tiles per block (the last may have fewer)
  dnnl::matmul matmul;
  memory::desc v_md, m_md, u_md;
  Tensor u;  // the weights in u_md where it is not the layer's own layout; else undefined
  size_t scratchpad;
};

bool Winograd::Suits(int64_t in, int64_t out) { return in >= 16 && out >= 16 && in <= kMaxChannels && out <= kMaxChannels; }

Winograd::Winograd(const dnnl::engine& engine, const Tensor& oihw, const Tensor& bias, bool bf16)
    : engine_(engine), in_(oihw.size(1)), out_(oihw.size(0)), bf16_(bf16) {
  if (oihw.dim() != 4 || oihw.size(2) != 3 || oihw.size(3) != 3 || !Suits(in_, out_)) {
    throw std::invalid_argument("Winograd: not a 3x3 convolution it runs");
  }
  Tensor plain = TransformWeights(oihw);
  u_md_ = ProductPd(engine_, bf16_ ? kBlockTiles16 : kBlockTiles, in_, out_, bf16_).weights_desc();
  u_ = Floats(u_md_);
  Reorder(engine_, memory::desc({kPlanes, in_, out_}, kF32, memory::format_tag::abc), plain.data(), u_md_,
          u_.data());
  bias_ = bias;
}

Winograd::~Winograd() = default;

std::shared_ptr<const Winograd::Plan> Winograd::PlanFor(int64_t n, int64_t h, int64_t w, bool any_size) const {
  auto plan = std::make_shared<Plan>();
  plan->n = n;
  plan->h = h;
  plan->w = w;
  // Every choice here follows one frame's tiles alone, never the batch or the thread count: the
  // matmul's summation order can follow its row count (oneDNN's AVX2 gemm does), and a frame's
  // features must not change with the batch it is in or the threads that run it.
  const int64_t per_frame = ((h + 1) / 2) * ((w + 1) / 2);
  if (per_frame < kMinTiles && !any_size) return nullptr;
  plan->total = n * per_frame;
  // Full blocks where a frame has enough; else half a frame's tiles, so that two threads share one.
  plan->tiles = std::min(bf16_ ? kBlockTiles16 : kBlockTiles, (per_frame + 1) / 2);
  plan->blocks = (plan->total + plan->tiles - 1) / plan->tiles;
  const auto pd = ProductPd(engine_, plan->tiles, in_, out_, bf16_);
  plan->matmul = dnnl::matmul(pd);
  plan->scratchpad = pd.scratchpad_desc().get_size();
  plan->v_md = Planes(plan->tiles, in_, bf16_ ? memory::data_type::bf16 : kF32);
  plan->m_md = Planes(plan->tiles, out_);
  plan->u_md = pd.weights_desc();
  if (plan->u_md != u_md_) {
    plan->u = Floats(plan->u_md);
    Reorder(engine_, u_md_, u_.data(), plan->u_md, plan->u.data());
  }
  return plan;
}

void Winograd::Run(const Plan& plan, const float* src, float* dst, int64_t dst_pixel) const {
  if (dst_pixel == 0) dst_pixel = out_;
  const int64_t h = plan.h, w = plan.w, cols = (w + 1) / 2, per_frame = ((h + 1) / 2) * cols;
  const int64_t v_stride = plan.tiles * in_ + kSkew, m_stride = plan.tiles * out_ + kSkew;
  const float* bias = bias_.data<float>();
  void* weights = plan.u.defined() ? plan.u.data() : u_.data();
  // Each thread's block buffers (its planes, its products, the matmul's scratchpad), from the
  // allocator libtorch uses: the addon's block cache, which cache({ memory: 0 }) empties.
  // Every part starts on 64 bytes, as the addon's allocator's memory does: oneDNN's scratchpad wants it.
  const auto aligned = [](int64_t floats) { return (floats + 15) / 16 * 16; };
  const int most = omp_get_max_threads();
  const int64_t pad_floats = aligned(static_cast<int64_t>(plan.scratchpad / sizeof(float)) + 1);
  const int64_t v_floats = aligned(bf16_ ? (kPlanes * v_stride + 1) / 2 : kPlanes * v_stride);  // bfloat16: 2 a float
  const int64_t per_thread = pad_floats + v_floats + aligned(kPlanes * m_stride);
  Tensor buffers = Tensor::Empty({most * per_thread});
  std::vector<std::exception_ptr> failed(static_cast<size_t>(most));
  // Each thread takes its own run of blocks, with no barrier inside: a thread that fails leaves
  // the others nothing to wait for.
#pragma omp parallel
  {
    const int threads = omp_get_num_threads(), me = omp_get_thread_num();
    try {
      float* pad_data = buffers.data<float>() + me * per_thread;
      float* v_data = pad_data + pad_floats;
      float* m_data = v_data + v_floats;
      dnnl::stream stream(engine_);
      memory v(plan.v_md, engine_, v_data), m(plan.m_md, engine_, m_data), u(plan.u_md, engine_, weights);
      memory pad(memory::desc({pad_floats * 4}, memory::data_type::u8, memory::format_tag::a), engine_, pad_data);
      for (int64_t b = plan.blocks * me / threads; b < plan.blocks * (me + 1) / threads; ++b) {
        const int64_t first = b * plan.tiles, count = std::min(plan.tiles, plan.total - first);
        uint16_t* v16 = reinterpret_cast<uint16_t*>(v_data);
        for (int64_t t = 0; t < count; ++t) {
          const int64_t frame = (first + t) / per_frame, at = (first + t) % per_frame;
          const float* image = src + frame * h * w * in_;
          const int64_t y0 = 2 * (at / cols) - 1, x0 = 2 * (at % cols) - 1;
          if (bf16_) {
            InputTile(image, h, w, in_, y0, x0, v16 + t * in_, v_stride);
          } else {
            InputTile(image, h, w, in_, y0, x0, v_data + t * in_, v_stride);
          }
        }
        // The last block's unused rows: zeros, so the product reads no stale values.
        const size_t element = bf16_ ? sizeof(uint16_t) : sizeof(float);
        for (int p = 0; p < kPlanes && count < plan.tiles; ++p) {
          std::memset(reinterpret_cast<char*>(v_data) + (p * v_stride + count * in_) * element, 0,
                      element * (plan.tiles - count) * in_);
        }
        plan.matmul.execute(stream, {{DNNL_ARG_SRC, v}, {DNNL_ARG_WEIGHTS, u}, {DNNL_ARG_DST, m}, {DNNL_ARG_SCRATCHPAD, pad}});
        for (int64_t t = 0; t < count; ++t) {
          const int64_t frame = (first + t) / per_frame, at = (first + t) % per_frame;
          OutputTile(m_data + t * out_, m_stride, bias, out_, dst + frame * h * w * dst_pixel, dst_pixel, h, w,
                     2 * (at / cols), 2 * (at % cols));
        }
      }
    } catch (...) {
      failed[static_cast<size_t>(me)] = std::current_exception();
    }
  }
  for (const auto& e : failed) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace onednn
}  // namespace film
