#include "film_net.h"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "../model.h"
#include "../parallel.h"
#include "../tensor_io.h"
#include "compat.h"
#include "engine.h"
#include "winograd.h"

namespace film {
namespace onednn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr auto kBf16 = memory::data_type::bf16;
constexpr float kSlope = 0.2f;
constexpr int kColors = 3;
constexpr int kMaxSubLevels = 12;  // the extractor's stages at most: its parts per level

// Never destroyed, as engine.cc's: runs may finish after exit() has started.
dnnl::engine& CpuEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

std::string Dims(const std::vector<int64_t>& shape) { return ShapeString(shape); }

// The weights by name, each taken at most once: what is left over at the end is not FILM's.
class WeightSet {
 public:
  explicit WeightSet(const std::map<std::string, Tensor>& all) : all_(all) {}

  bool Has(const std::string& name) const { return all_.count(name) != 0; }

  // The tensor `name`, float32 of exactly `shape`; `why` says what the shape follows from.
  Tensor Take(const std::string& name, const std::vector<int64_t>& shape, const std::string& why) {
    const Tensor& t = Find(name);
    if (t.sizes() != shape) {
      throw std::invalid_argument("FilmNet: tensor '" + name + "' has shape " + t.ShapeString() + ", expected " +
                                  Dims(shape) + " (" + why + ")");
    }
    return t;
  }

  // The tensor `name`, float32 of rank `rank` with positive sizes: for shapes read, not checked.
  const Tensor& Peek(const std::string& name, int64_t rank) const {
    const Tensor& t = Find(name);
    bool ok = t.dim() == rank;
    for (int64_t d = 0; ok && d < rank; ++d) ok = t.size(d) > 0 && t.size(d) <= (int64_t{1} << 20);
    if (!ok) {
      throw std::invalid_argument("FilmNet: tensor '" + name + "' has shape " + t.ShapeString() + ", expected " +
                                  std::to_string(rank) + " positive sizes");
    }
    return t;
  }

  // Throws, naming the first tensor that no part of the network took.
  void CheckAllTaken() const {
    for (const auto& entry : all_) {
      if (!taken_.count(entry.first)) {
        throw std::invalid_argument("FilmNet: tensor '" + entry.first +
                                    "' is not part of FILM's interpolator in the PyTorch port's layout");
      }
    }
  }

 private:
  const Tensor& Find(const std::string& name) const {
    auto it = all_.find(name);
    if (it == all_.end()) {
      throw std::invalid_argument("FilmNet: no tensor '" + name +
                                  "': not FILM's interpolator in the PyTorch port's layout");
    }
    if (it->second.dtype() != DType::kFloat32 || !it->second.data()) {
      throw std::invalid_argument("FilmNet: tensor '" + name + "' is " + DTypeName(it->second.dtype()) +
                                  ", expected float32");
    }
    const_cast<WeightSet*>(this)->taken_.insert(name);
    return it->second;
  }

  const std::map<std::string, Tensor>& all_;
  std::set<std::string> taken_;
};

// Direct convolution for inference, stride 1, zero padding `before` at top and left, `after` at
// bottom and right ({rows, columns} each).
dnnl::convolution_forward::primitive_desc ConvPd(const memory::desc& src, const memory::desc& weights,
                                                 const memory::desc& bias, const memory::desc& dst,
                                                 const memory::dims& left, const memory::dims& right,
                                                 const dnnl::primitive_attr& attr) {
  const memory::dims strides{1, 1};
#if DNNL_VERSION_MAJOR >= 3
  return {CpuEngine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, weights, bias, dst,
          strides, left, right, attr};
#else
  const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                             src, weights, bias, dst, strides, left, right);
  return {desc, attr, CpuEngine()};
#endif
}

Tensor Bytes(size_t size) { return Tensor::Empty({static_cast<int64_t>(std::max<size_t>(size, 1))}, DType::kUint8); }

double Ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

// ---- The hand-written parts, float32 NHWC unless said otherwise ----

// [N, 3, H, W] -> [N, H, W, 3].
Tensor ColorsLast(const Tensor& src) {
  const int64_t n = src.size(0), hw = src.size(2) * src.size(3);
  Tensor dst = Tensor::Empty({n, src.size(2), src.size(3), kColors});
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  ParallelFor(0, n * hw, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t k = p / hw, at = p % hw;
      for (int c = 0; c < kColors; ++c) d[p * kColors + c] = s[(k * kColors + c) * hw + at];
    }
  });
  return dst;
}

// Row y of [N, 2h, 2w, 2] = F.interpolate(2 * flow, size=(2h, 2w), mode='bilinear',
// align_corners=False) for flow [N, h, w, 2], item k, written at dst (2w pixels). Source row of
// output row y: max(0, (y + 0.5) / 2 - 0.5), its lower neighbour clamped; the weights are 0.25 and
// 0.75 (or 1 and 0 at the first row), exact. Made a row at a time where it is read: the whole
// upsampled flow would be 2 more channels at the finest level.
void UpsampleFlowRow(const Tensor& flow, int64_t k, int64_t y, float* dst) {
  const int64_t h = flow.size(1), w = flow.size(2), ow = 2 * w;
  // index, neighbour and weights of one output coordinate
  auto source = [](int64_t o, int64_t in, int64_t* i0, int64_t* i1, float* w0, float* w1) {
    const float src = std::max(0.f, (static_cast<float>(o) + 0.5f) * 0.5f - 0.5f);
    *i0 = static_cast<int64_t>(src);
    *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
    *w1 = src - static_cast<float>(*i0);
    *w0 = 1.f - *w1;
  };
  int64_t y0, y1;
  float h0, h1;
  source(y, h, &y0, &y1, &h0, &h1);
  const float* r0 = flow.data<float>() + (k * h + y0) * w * 2;
  const float* r1 = flow.data<float>() + (k * h + y1) * w * 2;
  for (int64_t x = 0; x < ow; ++x) {
    int64_t x0, x1;
    float w0, w1;
    source(x, w, &x0, &x1, &w0, &w1);
    for (int c = 0; c < 2; ++c) {
      const float a = 2.f * r0[x0 * 2 + c], b = 2.f * r0[x1 * 2 + c];
      const float e = 2.f * r1[x0 * 2 + c], f = 2.f * r1[x1 * 2 + c];
      dst[x * 2 + c] = (a * w0 + b * w1) * h0 + (e * w0 + f * w1) * h1;
    }
  }
}

// dst[c] = nw * a[c] + ne * b[c] + sw * e[c] + se * f[c], the order grid_sample sums in.
__attribute__((target_clones("avx512f", "avx2", "default"))) void Blend(const float* a, const float* b, const float* e,
                                                                         const float* f, float nw, float ne, float sw,
                                                                         float se, int64_t channels, float* dst) {
#pragma omp simd
  for (int64_t c = 0; c < channels; ++c) dst[c] = nw * a[c] + ne * b[c] + sw * e[c] + se * f[c];
}

// One frame's NHWC channels, sampled by Warp.
struct Source {
  const float* data;
  int64_t channels;
};

// The pixels of sources (each [h, w, channels]) at (x + fx, y + fy), bilinear, the coordinates
// clamped to the frame (grid_sample, padding 'border', align_corners False, on the port's grid),
// written one source after another at dst.
inline void WarpPixel(const Source* sources, int count, int64_t h, int64_t w, int64_t x, int64_t y, float fx, float fy,
                      float* dst) {
  const float ix = std::min(static_cast<float>(w - 1), std::max(static_cast<float>(x) + fx, 0.f));
  const float iy = std::min(static_cast<float>(h - 1), std::max(static_cast<float>(y) + fy, 0.f));
  const float fx0 = std::floor(ix), fy0 = std::floor(iy);
  const int64_t x0 = static_cast<int64_t>(fx0), y0 = static_cast<int64_t>(fy0);
  const int64_t x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);  // where clamped, its weight is 0
  const float nw = (fx0 + 1.f - ix) * (fy0 + 1.f - iy), ne = (ix - fx0) * (fy0 + 1.f - iy);
  const float sw = (fx0 + 1.f - ix) * (iy - fy0), se = (ix - fx0) * (iy - fy0);
  for (int s = 0; s < count; ++s) {
    const int64_t c = sources[s].channels;
    const float* base = sources[s].data;
    Blend(base + (y0 * w + x0) * c, base + (y0 * w + x1) * c, base + (y1 * w + x0) * c, base + (y1 * w + x1) * c, nw, ne,
          sw, se, c, dst);
    dst += c;
  }
}

}  // namespace

// One convolution, prepared: its Winograd form where it has one (it then runs so at every size), else
// its weights and their layouts that direct convolutions asked for (few: most sizes ask for the same).
struct FilmNet::Conv {
  std::string name;
  Tensor oihw, bias;  // oihw: none where winograd
  int64_t in = 0, out = 0, kh = 0, kw = 0;
  int64_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;  // zero padding at top, left, bottom, right
  bool leaky = true;
  std::shared_ptr<const Winograd> winograd;

  Tensor WeightsIn(const memory::desc& md) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : reordered_) {
      if (entry.first == md) return entry.second;
    }
    Tensor out_bytes = Bytes(md.get_size());
    memory src(memory::desc({out, in, kh, kw}, kF32, Tag::oihw), CpuEngine(), oihw.data());
    memory dst(md, CpuEngine(), out_bytes.data());
    dnnl::stream stream(CpuEngine());
    dnnl::reorder(src, dst).execute(stream, src, dst);
    stream.wait();
    reordered_.emplace_back(md, out_bytes);
    return out_bytes;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::vector<std::pair<memory::desc, Tensor>> reordered_;
};

namespace {

// A convolution at one (batch, size): Winograd's plan (float32 in and out, whatever its product
// computes in), or a direct oneDNN convolution, in float32 or with bfloat16 input and weights (its
// output bfloat16 where the next layer reads it).
struct ConvStep {
  const FilmNet::Conv* conv = nullptr;
  int64_t n = 0, h = 0, w = 0;
  std::shared_ptr<const Winograd::Plan> winograd;
  dnnl::convolution_forward primitive;
  memory::desc src_md, weights_md, bias_md, dst_md;
  Tensor weights;
  size_t scratchpad = 0;
};

ConvStep MakeStep(const FilmNet::Conv& conv, int64_t n, int64_t h, int64_t w, bool bf16 = false, bool bf16_out = false) {
  ConvStep s;
  s.conv = &conv;
  s.n = n;
  s.h = h;
  s.w = w;
  if (conv.winograd) {
    s.winograd = conv.winograd->PlanFor(n, h, w, /*any_size=*/true);  // the layer keeps no other weights
    return s;
  }
  const auto type = bf16 ? kBf16 : kF32;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (conv.leaky) {
    dnnl::post_ops ops;
    compat::AppendLeakyRelu(ops, kSlope);
    attr.set_post_ops(ops);
  }
  const auto pd = ConvPd(memory::desc({n, conv.in, h, w}, type, Tag::nhwc),
                         memory::desc({conv.out, conv.in, conv.kh, conv.kw}, type, Tag::any),
                         memory::desc({conv.out}, kF32, Tag::a),
                         memory::desc({n, conv.out, h, w}, bf16_out ? kBf16 : kF32, Tag::nhwc),
                         {conv.pad_t, conv.pad_l}, {conv.pad_b, conv.pad_r}, attr);
  s.primitive = dnnl::convolution_forward(pd);
  s.src_md = pd.src_desc();
  s.weights_md = pd.weights_desc();
  s.bias_md = pd.bias_desc();
  s.dst_md = pd.dst_desc();
  s.weights = conv.WeightsIn(s.weights_md);
  s.scratchpad = pd.scratchpad_desc().get_size();
  return s;
}

// src: dense [n, h, w, in], dst: dense [n, h, w, out], each of the type the step takes.
void RunStep(const ConvStep& s, const void* src, void* dst, const memory& scratchpad) {
  if (s.winograd) {
    s.conv->winograd->Run(*s.winograd, static_cast<const float*>(src), static_cast<float*>(dst));
    return;
  }
  dnnl::stream stream(CpuEngine());
  s.primitive.execute(stream, {{DNNL_ARG_SRC, memory(s.src_md, CpuEngine(), const_cast<void*>(src))},
                               {DNNL_ARG_WEIGHTS, memory(s.weights_md, CpuEngine(), s.weights.data())},
                               {DNNL_ARG_BIAS, memory(s.bias_md, CpuEngine(), s.conv->bias.data())},
                               {DNNL_ARG_DST, memory(s.dst_md, CpuEngine(), dst)},
                               {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
}

// float32 -> bfloat16, rounded to nearest even.
void ToBf16(const float* src, uint16_t* dst, int64_t count) {
  ParallelFor(0, count, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) dst[e] = RoundToBf16(src[e]);
  });
}

// A chain of convolutions run over one pyramid level a slab of rows at a time. Each slab holds
// `halo` rows more above and below the `band` rows it gives, where the frame has them: the zero
// padding each convolution sees at a slab's cut edges then reaches none of the rows given (a 3x3
// spoils one row per convolution). Slabs start on even rows, so Winograd's 2x2 output tiles fall
// where they fall on the whole frame, and all slabs have one height: one primitive per layer.
struct Band {
  std::vector<ConvStep> steps;  // each for [items, slab, w]
  bool bf16 = false;            // the first layer takes bfloat16: the slab's input converted
  int64_t batch = 0, rows = 0, w = 0;
  int64_t items = 0;                     // batch items in a slab: all, or one at a time where that spares cutting rows
  int64_t band = 0, halo = 0, slab = 0;  // rows given, rows more each side, rows convolved
};

// Slabs of about this many bytes (SlabFloats), where `band` (FilmNetMemory) is 0.
constexpr int64_t kSlabBytes = int64_t{192} << 20;

// A slab's floats per pixel: its input or a layer's output, whichever is wider, and a layer's
// output (the layers write in turn into the one the layer before did not), and in bfloat16 the
// input converted.
int64_t SlabChannels(int64_t in, int64_t widest, bool bf16) { return std::max(in, widest) + widest + (bf16 ? (in + 1) / 2 : 0); }

Band MakeBand(const std::vector<const FilmNet::Conv*>& convs, int64_t batch, int64_t rows, int64_t w, int64_t band,
              bool bf16) {
  Band b;
  b.batch = batch;
  b.rows = rows;
  b.w = w;
  int64_t widest = 0;
  for (const FilmNet::Conv* c : convs) {
    b.halo += std::max(c->pad_t, c->pad_b);
    widest = std::max(widest, c->out);
  }
  b.halo += b.halo % 2;
  // In bfloat16, a direct convolution takes bfloat16 where its input can come so: the slab's (converted
  // once) or a direct one's before it; after a Winograd layer (float32 out), the rest run in float32.
  std::vector<bool> in16(convs.size());
  for (size_t k = 0; k < convs.size(); ++k) in16[k] = bf16 && !convs[k]->winograd && (k == 0 || in16[k - 1]);
  b.bf16 = in16[0];
  const int64_t row = w * SlabChannels(convs.front()->in, widest, b.bf16) * static_cast<int64_t>(sizeof(float));
  // A whole batch, else one item at a time, before rows are cut (each cut convolves 2 halos more).
  b.items = band > 0 || batch * rows * row <= kSlabBytes ? batch : 1;
  if (band <= 0) {
    // as many rows as fit, then the same count in every slab: a last slab that gives a few rows
    // would convolve a whole slab for them
    const int64_t most = std::max<int64_t>(2, kSlabBytes / (b.items * row)), slabs = (rows + most - 1) / most;
    band = (rows + slabs - 1) / slabs;
    band += band % 2;
  }
  band = std::max<int64_t>(2, band - band % 2);
  if (band + 2 * b.halo >= rows) {
    b.band = b.slab = rows;
    b.halo = 0;
  } else {
    b.band = band;
    b.slab = band + 2 * b.halo;
  }
  for (size_t k = 0; k < convs.size(); ++k) {
    b.steps.push_back(MakeStep(*convs[k], b.items, b.slab, w, in16[k], k + 1 < convs.size() && in16[k + 1]));
  }
  return b;
}

// The first row of the slab that gives rows [first, first + band).
int64_t SlabStart(const Band& b, int64_t first) {
  const int64_t s = std::min(std::max<int64_t>(first - b.halo, 0), b.rows - b.slab);
  return s - s % 2;
}

struct BandTimes {
  double fill = 0;  // writing the slabs' inputs
  double run = 0;   // prepare, the convolutions, emit
};

int64_t Widest(const Band& b) {
  int64_t widest = 0;
  for (const ConvStep& s : b.steps) widest = std::max(widest, s.conv->out);
  return widest;
}

// The floats a band's slab needs.
int64_t SlabFloats(const Band& b) {
  return b.items * b.slab * b.w * SlabChannels(b.steps.front().conv->in, Widest(b), b.bf16);
}

// Where a band's last layer may write its output itself: [batch, rows, w] pixels `pixel` floats
// apart from `data` (a channel range of a wider tensor). It does where the band has whole levels
// and that layer is a Winograd one; emit is not called then.
struct Direct {
  float* data = nullptr;
  int64_t pixel = 0;
};

// Runs b over its level: per slab (items [i0, i0 + items), rows from s), prepare(s); fill(item, y,
// row) writes input row y of batch item `item` (w pixels of the first layer's channels, dense) for
// each of the slab's rows; then the convolutions; then emit(item, y0, y1, out) takes output rows
// [y0, y1) (at most 2, y0 even) of the rows the slab gives, dense at out. fill and emit run on
// OpenMP threads.
template <typename Prepare, typename Fill, typename Emit>
void RunBand(const Band& b, float* workspace, const memory& scratchpad, Prepare&& prepare, Fill&& fill, Emit&& emit,
             BandTimes* times, Direct direct = Direct()) {
  const int64_t in = b.steps.front().conv->in, out = b.steps.back().conv->out, w = b.w, widest = Widest(b);
  const int64_t pixels = b.items * b.slab * w;
  float* buffers[2] = {workspace, workspace + pixels * std::max(in, widest)};  // input, then the layers in turn
  uint16_t* input16 = reinterpret_cast<uint16_t*>(buffers[1] + pixels * widest);
  const bool in_place = direct.data && b.band == b.rows && b.steps.back().winograd;
  for (int64_t i0 = 0; i0 < b.batch; i0 += b.items) {
    for (int64_t first = 0; first < b.rows; first += b.band) {
      const int64_t last = std::min(b.rows, first + b.band), s = SlabStart(b, first);
      auto clock = std::chrono::steady_clock::now();
      prepare(s);
      times->run += Ms(clock);
      clock = std::chrono::steady_clock::now();
      float* input = buffers[0];
      ParallelFor(0, b.items * b.slab, 1, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) fill(i0 + r / b.slab, s + r % b.slab, input + r * w * in);
      });
      times->fill += Ms(clock);
      clock = std::chrono::steady_clock::now();
      const void* x = input;
      if (b.bf16) {
        ToBf16(input, input16, pixels * in);
        x = input16;
      }
      for (size_t k = 0; k < b.steps.size(); ++k) {
        if (in_place && k + 1 == b.steps.size()) {
          const ConvStep& last = b.steps.back();
          last.conv->winograd->Run(*last.winograd, static_cast<const float*>(x),
                                   direct.data + i0 * b.rows * w * direct.pixel, direct.pixel);
          break;
        }
        float* y = buffers[(k + 1) % 2];
        RunStep(b.steps[k], x, y, scratchpad);
        x = y;
      }
      if (in_place) {
        times->run += Ms(clock);
        continue;
      }
      const float* result = static_cast<const float*>(x);
      const int64_t pairs = (last - first + 1) / 2;
      ParallelFor(0, b.items * pairs, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
          const int64_t item = p / pairs, y0 = first + 2 * (p % pairs), y1 = std::min(last, y0 + 2);
          emit(i0 + item, y0, y1, result + (item * b.slab + y0 - s) * w * out);
        }
      });
      times->run += Ms(clock);
    }
  }
}

// Stage 0's first convolution on `channels` channels, those past the 3 colors zero: oneDNN's NHWC
// kernels run 3 channels several times slower than 4 in float32, and than 16 in bfloat16 on AMX
// (engine.cc's FirstConvChannels).
void PadColors(FilmNet::Conv* conv, int64_t channels) {
  const int64_t out = conv->out, taps = conv->kh * conv->kw;
  Tensor padded = Tensor::Zeros({out, channels, conv->kh, conv->kw});
  for (int64_t o = 0; o < out; ++o) {
    std::memcpy(padded.data<float>() + o * channels * taps, conv->oihw.data<float>() + o * kColors * taps,
                sizeof(float) * kColors * taps);
  }
  conv->oihw = padded;
  conv->in = channels;
}

}  // namespace

struct FilmNet::Plan {
  std::vector<std::vector<Band>> extract;       // [level m][stage k <= m]: stage k from its input at level m, batch 2n
  std::vector<Band> flow;                       // [level]: its predictor's layers, batch 2n
  std::vector<Band> fusion;                     // [level < F - 1]: 3x3, 3x3 (and at 0 the 1x1 to RGB), batch n
  std::vector<std::array<ConvStep, 4>> resize;  // [level < F - 1]: the 2x2's phases on a slab's coarse rows
  std::vector<int64_t> resize_rows;             // [level < F - 1]: those coarse rows
  int64_t workspace = 0;                        // floats of the largest slab (SlabFloats), one buffer for all
  size_t scratchpad = 0;
};

int FilmNetConfig::MinLevels() const { return std::max<int>(static_cast<int>(flow_convs.size()), fusion_levels); }

int64_t FilmNetConfig::FeatureWidth(int level) const {
  const int top = std::min(level, sub_levels - 1);
  return filters * ((int64_t{1} << (top + 1)) - 1);
}

// The 2x2 convolution (padded right and bottom) of a nearest x2 upsampling, as four convolutions
// of the coarse input, one per output phase (2a + b: pixels (2y + a, 2x + b)): where a phase's
// window covers one coarse pixel twice, the taps on it are summed. Phase (0, 0) is 1x1, (0, 1)
// 1x2, (1, 0) 2x1 and (1, 1) the 2x2 itself: 9 taps for 16, and no upsampled copy.
std::array<std::unique_ptr<FilmNet::Conv>, 4> FilmNet::ResizePhases(const Conv& conv) {
  std::array<std::unique_ptr<Conv>, 4> phases;
  const int64_t pairs = conv.out * conv.in;
  const float* w = conv.oihw.data<float>();  // [out, in, 2, 2]: taps w[0] w[1] / w[2] w[3]
  for (int p = 0; p < 4; ++p) {
    const int a = p / 2, b = p % 2;
    std::unique_ptr<Conv> c(new Conv);
    c->name = conv.name + " (phase " + std::to_string(a) + std::to_string(b) + ")";
    c->in = conv.in;
    c->out = conv.out;
    c->kh = a + 1;
    c->kw = b + 1;
    c->pad_b = a;
    c->pad_r = b;
    c->bias = conv.bias;
    c->leaky = conv.leaky;
    c->oihw = Tensor::Empty({conv.out, conv.in, c->kh, c->kw});
    float* d = c->oihw.data<float>();
    for (int64_t e = 0; e < pairs; ++e) {
      const float* t = w + 4 * e;
      float* o = d + e * c->kh * c->kw;
      if (p == 0) {
        o[0] = ((t[0] + t[1]) + t[2]) + t[3];
      } else if (p == 1) {  // columns x, x + 1; both rows on row y
        o[0] = t[0] + t[2];
        o[1] = t[1] + t[3];
      } else if (p == 2) {  // rows y, y + 1; both columns on column x
        o[0] = t[0] + t[1];
        o[1] = t[2] + t[3];
      } else {
        std::copy_n(t, 4, o);
      }
    }
    phases[p] = std::move(c);
  }
  return phases;
}

FilmNet::FilmNet(const std::map<std::string, Tensor>& weights, Precision precision)
    : bf16_(precision == Precision::kBf16) {
  if (bf16_ && !Engine::HasBf16()) {
    throw std::invalid_argument("FilmNet: bf16 needs a CPU whose oneDNN ISA has bf16, and this one's is " + Engine::Isa());
  }
  WeightSet set(weights);
  FilmNetConfig& cfg = config_;

  // The extractor: extract.extract_sublevels.convs.{j}.{k}.0.{weight,bias}.
  const std::string ex = "extract.extract_sublevels.convs.";
  cfg.filters = set.Peek(ex + "0.0.0.weight", 4).size(0);
  while (set.Has(ex + std::to_string(cfg.sub_levels) + ".0.0.weight")) ++cfg.sub_levels;
  if (cfg.sub_levels > kMaxSubLevels || (cfg.filters << (cfg.sub_levels - 1)) > 4096) {
    throw std::invalid_argument("FilmNet: tensor '" + ex + std::to_string(cfg.sub_levels - 1) +
                                ".0.0.weight': an extractor this deep and wide is not one FILM has");
  }
  // A convolution `name`.{weight,bias} of this shape.
  auto make = [&](const std::string& name, int64_t out, int64_t in, int64_t k, bool leaky, const std::string& why) {
    std::unique_ptr<Conv> c(new Conv);
    c->name = name;
    c->oihw = set.Take(name + ".weight", {out, in, k, k}, why);
    c->bias = set.Take(name + ".bias", {out}, why);
    c->out = out;
    c->in = in;
    c->kh = c->kw = k;
    c->pad_t = c->pad_l = k == 3 ? 1 : 0;
    c->pad_b = c->pad_r = k == 3 || k == 2 ? 1 : 0;  // the 2x2 input is padded right and bottom by one (F.pad(x, (0, 1, 0, 1)))
    c->leaky = leaky;
    if (k == 3 && Winograd::Suits(in, out)) {
      c->winograd = std::make_shared<Winograd>(CpuEngine(), c->oihw, c->bias, bf16_);
      c->oihw = Tensor();  // runs as Winograd at every size: the plain weights would be a second copy
    }
    return c;
  };

  for (int j = 0; j < cfg.sub_levels; ++j) {
    const int64_t width = cfg.filters << j;
    const std::string name = ex + std::to_string(j) + ".";
    const std::string why = "extractor stage " + std::to_string(j) + ", width " + std::to_string(width);
    std::array<std::unique_ptr<Conv>, 2> stage;
    stage[0] = make(name + "0.0", width, j == 0 ? kColors : width / 2, 3, true, why);
    stage[1] = make(name + "1.0", width, width, 3, true, why);
    if (j == 0) PadColors(stage[0].get(), bf16_ ? 16 : kColors + 1);
    extract_.push_back(std::move(stage));
  }

  // The flow predictors: predictor p runs on level p, the last (`_predictor`) on every coarser one.
  int count = 1;
  while (set.Has("predict_flow._predictors." + std::to_string(count - 1) + "._convs.0.0.weight")) ++count;
  set.Peek("predict_flow._predictor._convs.0.0.weight", 4);
  if (count < cfg.sub_levels) {
    throw std::invalid_argument("FilmNet: tensor 'predict_flow._predictors." + std::to_string(cfg.sub_levels - 2) +
                                "._convs.0.0.weight' is missing: " + std::to_string(count) +
                                " flow predictors for an extractor of " + std::to_string(cfg.sub_levels) +
                                " sub-levels (the shared one runs where the features' width is constant)");
  }
  for (int p = 0; p < count; ++p) {
    const std::string prefix =
        p == count - 1 ? "predict_flow._predictor" : "predict_flow._predictors." + std::to_string(count - 2 - p);
    const int64_t in = 2 * cfg.FeatureWidth(p);
    int layers = 0;
    while (set.Has(prefix + "._convs." + std::to_string(layers) + ".0.weight")) ++layers;
    if (layers < 2) {
      throw std::invalid_argument("FilmNet: no tensor '" + prefix + "._convs." + std::to_string(layers) +
                                  ".0.weight': a flow predictor ends in two 1x1 convolutions");
    }
    const int convs = layers - 2;
    const auto layer = [&](int t) { return prefix + "._convs." + std::to_string(t) + ".0"; };
    const int64_t half = set.Peek(layer(convs) + ".weight", 4).size(0);
    const int64_t filters = convs > 0 ? set.Peek(layer(0) + ".weight", 4).size(0) : 2 * half;
    const std::string why = "flow level " + std::to_string(p) + ": features of " + std::to_string(in / 2) +
                            " channels twice, " + std::to_string(convs) + " convolutions of " + std::to_string(filters);
    std::vector<std::unique_ptr<Conv>> predictor;
    for (int t = 0; t < convs; ++t) predictor.push_back(make(layer(t), filters, t == 0 ? in : filters, 3, true, why));
    predictor.push_back(make(layer(convs), filters / 2, convs > 0 ? filters : in, 1, true, why));
    predictor.push_back(make(layer(convs + 1), 2, filters / 2, 1, false, why));
    cfg.flow_convs.push_back(convs);
    cfg.flow_filters.push_back(filters);
    predictors_.push_back(std::move(predictor));
  }

  // The fusion: fuse.convs.{k} makes level F - 2 - k.
  int steps = 0;
  while (set.Has("fuse.convs." + std::to_string(steps) + ".0.0.weight")) ++steps;
  if (steps == 0) set.Peek("fuse.convs.0.0.0.weight", 4);  // throws, naming it
  cfg.fusion_levels = steps + 1;
  cfg.fusion_filters.assign(steps, 0);
  for (int k = 0; k < steps; ++k) {
    cfg.fusion_filters[steps - 1 - k] = set.Peek("fuse.convs." + std::to_string(k) + ".0.0.weight", 4).size(0);
  }
  // Widths C << min(i, specialized): the first level that is not C << i is where they stop doubling.
  cfg.specialized_levels = steps - 1;
  for (int i = 0; i < steps; ++i) {
    if (cfg.fusion_filters[i] != cfg.filters << i) {
      cfg.specialized_levels = std::max(i - 1, 0);
      break;
    }
  }
  const auto aligned = [&](int i) { return 2 * (kColors + cfg.FeatureWidth(i) + 2); };
  fusion_.resize(steps);
  resize_.resize(steps);
  for (int k = 0; k < steps; ++k) {
    const int i = steps - 1 - k;
    const int64_t width = cfg.filters << std::min(i, cfg.specialized_levels);
    const int64_t in = k == 0 ? aligned(cfg.fusion_levels - 1) : cfg.fusion_filters[i + 1];
    const std::string name = "fuse.convs." + std::to_string(k) + ".";
    const std::string why = "fusion level " + std::to_string(i) + ": width " + std::to_string(width) + ", " +
                            std::to_string(aligned(i)) + " aligned channels";
    fusion_[i][0] = make(name + "0.0", width, in, 2, false, why);
    fusion_[i][1] = make(name + "1.0", width, aligned(i) + width, 3, true, why);
    fusion_[i][2] = make(name + "2.0", width, width, 3, true, why);
    resize_[i] = ResizePhases(*fusion_[i][0]);
  }
  output_ = make("fuse.output_conv", kColors, cfg.fusion_filters[0], 1, false, "RGB from fusion level 0");
  set.CheckAllTaken();
}

FilmNet::~FilmNet() = default;

const std::vector<std::unique_ptr<FilmNet::Conv>>& FilmNet::PredictorOf(int level) const {
  return predictors_[std::min<size_t>(static_cast<size_t>(level), predictors_.size() - 1)];
}

std::shared_ptr<const FilmNet::Plan> FilmNet::PlanFor(int64_t n, int64_t h, int64_t w, int levels, int64_t band) const {
  const Key key{n, h, w, levels, omp_get_max_threads(), band};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = plans_.begin(); it != plans_.end(); ++it) {
      if (it->first != key) continue;
      plans_.splice(plans_.end(), plans_, it);
      return it->second;
    }
  }
  auto plan = std::make_shared<Plan>();
  auto add = [&](std::vector<const Conv*> convs, int64_t batch, int level) {
    Band b = MakeBand(convs, batch, h >> level, w >> level, band, bf16_);
    for (const ConvStep& s : b.steps) plan->scratchpad = std::max(plan->scratchpad, s.scratchpad);
    plan->workspace = std::max(plan->workspace, SlabFloats(b));
    return b;
  };
  plan->extract.resize(levels);
  for (int m = 0; m < levels; ++m) {
    for (int k = 0; k <= std::min(m, config_.sub_levels - 1); ++k) {
      plan->extract[m].push_back(add({extract_[k][0].get(), extract_[k][1].get()}, 2 * n, m));
    }
  }
  for (int i = 0; i < levels; ++i) {
    std::vector<const Conv*> convs;
    for (const auto& conv : PredictorOf(i)) convs.push_back(conv.get());
    plan->flow.push_back(add(convs, 2 * n, i));
  }
  for (size_t i = 0; i < fusion_.size(); ++i) {
    std::vector<const Conv*> convs{fusion_[i][1].get(), fusion_[i][2].get()};
    if (i == 0) convs.push_back(output_.get());
    plan->fusion.push_back(add(convs, n, static_cast<int>(i)));
    // A slab's rows [s, s + slab) take coarse rows [s / 2, (s + slab) / 2], the last for the
    // phases that reach one row down.
    const int64_t coarse = std::min(plan->fusion.back().slab / 2 + 1, h >> (i + 1));
    plan->resize_rows.push_back(coarse);
    std::array<ConvStep, 4> phases;
    for (int p = 0; p < 4; ++p) {
      phases[p] = MakeStep(*resize_[i][p], n, coarse, w >> (i + 1), bf16_, false);
      plan->scratchpad = std::max(plan->scratchpad, phases[p].scratchpad);
    }
    plan->resize.push_back(std::move(phases));
  }

  std::lock_guard<std::mutex> lock(mutex_);
  plans_.emplace_back(key, std::move(plan));
  if (plans_.size() > kMaxPlans) plans_.pop_front();
  return plans_.back().second;
}

FilmNetMemory FilmNet::Remade(int64_t n, int64_t h, int64_t w, int levels) const {
  constexpr int64_t kHeld = int64_t{11} << 27;  // 1.375 GiB
  // The features held at the start where `recompute` levels are made again.
  const auto held = [&](int recompute, bool whole) {
    int64_t bytes = 0;
    for (int m = 0; m < levels; ++m) {
      const int64_t width = m >= recompute ? config_.FeatureWidth(m) : whole ? 0 : config_.FeatureWidth(m) - config_.filters;
      bytes += 2 * n * (h >> m) * (w >> m) * width * static_cast<int64_t>(sizeof(float));
    }
    return bytes;
  };
  FilmNetMemory remade;
  // From the least work up: level 0 has a first stage only; the whole of level 1 costs most.
  for (int recompute = 0; recompute <= std::min(2, levels - 1); ++recompute) {
    remade.recompute = recompute;
    if (held(recompute, false) <= kHeld) return remade;
  }
  remade.whole = true;
  return remade;
}

Tensor FilmNet::Run(const Tensor& x0, const Tensor& x1, const std::vector<float>& dt, int levels,
                    FilmNetTimes* times, const FilmNetMemory& memory_use) const {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("FilmNet: " + what); };
  for (const Tensor* x : {&x0, &x1}) {
    if (x->dtype() != DType::kFloat32 || x->dim() != 4 || x->size(1) != kColors || !x->data()) {
      fail("frames must be float32 [n, 3, h, w], got " + std::string(DTypeName(x->dtype())) + " " + x->ShapeString());
    }
  }
  if (x0.sizes() != x1.sizes()) fail("frames of shapes " + x0.ShapeString() + " and " + x1.ShapeString());
  const int64_t n = x0.size(0), h = x0.size(2), w = x0.size(3);
  if (n < 1) fail("an empty batch");
  if (static_cast<int64_t>(dt.size()) != n) {
    fail(std::to_string(dt.size()) + " times for a batch of " + std::to_string(n));
  }
  if (levels < config_.MinLevels() || levels > 16) {
    fail("levels " + std::to_string(levels) + ": this network takes " + std::to_string(config_.MinLevels()) +
         " to 16");
  }
  const int64_t unit = int64_t{1} << (levels - 1);
  if (h < unit || w < unit || h % unit || w % unit) {
    fail("frames of " + std::to_string(h) + "x" + std::to_string(w) + ": with " + std::to_string(levels) +
         " levels, height and width must be positive multiples of " + std::to_string(unit));
  }
  if (memory_use.recompute < -1 || memory_use.recompute > levels - 1) {
    fail("recompute " + std::to_string(memory_use.recompute) + ": -1 to " + std::to_string(levels - 1));
  }
  if (memory_use.band < 0 || memory_use.band % 2) fail("band " + std::to_string(memory_use.band) + ": 0 or a positive even number");
  std::shared_ptr<const Plan> plan = PlanFor(n, h, w, levels, memory_use.band);
  const FilmNetMemory remake = memory_use.recompute >= 0 ? memory_use : Remade(n, h, w, levels);
  const int recompute = remake.recompute;
  FilmNetTimes local;
  FilmNetTimes& t = times ? *times : local;
  t = FilmNetTimes();
  auto clock = std::chrono::steady_clock::now();

  const int64_t batch = 2 * n;  // frames 0 then frames 1
  const int64_t base = config_.filters;
  Tensor scratch = Bytes(plan->scratchpad);
  const memory scratchpad(memory::desc({static_cast<int64_t>(scratch.numel())}, memory::data_type::u8, Tag::a),
                          CpuEngine(), scratch.data());
  // every band's slabs, one after another: one block for the run, not one per level and stage
  Tensor slabs = Tensor::Empty({plan->workspace});
  float* workspace = slabs.data<float>();
  const auto rows_at = [&](int m) { return h >> m; };
  const auto cols_at = [&](int m) { return w >> m; };

  // 1. Both image pyramids in one batch, NHWC.
  std::vector<Tensor> colors(levels);
  {
    Tensor image = Tensor::Empty({batch, kColors, h, w});
    std::memcpy(image.data(), x0.data(), x0.nbytes());
    std::memcpy(image.data<float>() + x0.numel(), x1.data(), x1.nbytes());
    for (int m = 0; m < levels; ++m) {
      if (m > 0) image = AvgPool2x2(image);
      colors[m] = ColorsLast(image);
    }
  }

  // The cascaded features, a part per extractor stage: parts[m][k] is stage k's output at level m
  // (made from image level m - k), [2n, h_m, w_m, C << k]. Level m's features are its parts one
  // after another along channels, in the order FILM concatenates them.
  std::vector<std::vector<Tensor>> parts(levels);
  for (int m = 0; m < levels; ++m) parts[m].resize(static_cast<size_t>(std::min(m, config_.sub_levels - 1) + 1));
  // Which stages' outputs a sub-tree keeps: at the start, all but the first stage's at the
  // `recompute` finest levels (that stage runs again, on its own image level, when the flow
  // reaches the level: the other stages there come from finer image levels, and cost far more),
  // or with `whole`, none there (each of their parts is made again, from its image level up).
  using Keep = std::function<bool(int, int)>;  // (level, stage)
  const Keep extract_keep = [&](int m, int k) { return m >= recompute || (k > 0 && !remake.whole); };
  const auto remake_keep = [&](int level) { return Keep([&, level](int m, int k) { return m == level && !extract_keep(m, k); }); };

  // Where a sub-tree's pooled outputs go in their region (-1: kept, not pooled), and the floats the
  // region needs: the first at 0, then alternately after the first and at 0. Each is half the one
  // before, so the one a stage reads is never the one it writes over.
  const auto pooled_places = [&](int j, int last, const Keep& keep, std::vector<int64_t>* at) {
    at->assign(static_cast<size_t>(last + 1), -1);
    int64_t first = 0, need = 0;
    bool at_start = true;
    for (int k = 0; k < last; ++k) {
      const int m = j + k;
      if (keep(m, k)) continue;
      const int64_t size = batch * (rows_at(m) / 2) * (cols_at(m) / 2) * (base << k);
      if (first == 0) first = size;
      (*at)[k] = at_start ? 0 : first;
      at_start = !at_start;
      need = std::max(need, (*at)[k] + size);
    }
    return need;
  };
  // The last stage of image level j's sub-tree whose output is kept (-1: none).
  const auto last_kept = [&](int j, const Keep& keep) {
    int last = std::min(config_.sub_levels - 1, levels - 1 - j);
    while (last >= 0 && !keep(j + last, last)) --last;
    return last;
  };

  // Image level j's sub-tree, stages 0 to `last`: stage k's output (level j + k) becomes
  // parts[j + k][k] where keep says so, else it is pooled, for stage k + 1, into the region at
  // `pooled_region` (a stage whose output is kept is pooled from its part).
  BandTimes extract_times;
  const auto sub_tree = [&](int j, int last, const Keep& keep, float* pooled_region) {
    std::vector<int64_t> at;
    pooled_places(j, last, keep, &at);
    const float* pooled = nullptr;  // stage k's input, where stage k - 1's output was not kept
    for (int k = 0; k <= last; ++k) {
      const int m = j + k;
      const Band& band = plan->extract[m][k];
      const int64_t lh = rows_at(m), lw = cols_at(m), in = band.steps[0].conv->in, out = base << k;
      if (keep(m, k)) parts[m][k] = Tensor::Empty({batch, lh, lw, out});
      float* dst = keep(m, k) ? parts[m][k].data<float>() : nullptr;
      float* pool_to = at[k] >= 0 ? pooled_region + at[k] : nullptr;
      const float* image = colors[m].data<float>();
      const float* from = pooled;
      const float* finer = k > 0 && !from ? parts[m - 1][k - 1].data<float>() : nullptr;  // stage k - 1's, kept
      RunBand(
          band, workspace, scratchpad, [](int64_t) {},
          [&](int64_t item, int64_t y, float* row) {
            if (k == 0) {
              const float* c = image + (item * lh + y) * lw * kColors;
              for (int64_t x = 0; x < lw; ++x) {
                for (int e = 0; e < kColors; ++e) row[x * in + e] = c[x * kColors + e];
                for (int64_t e = kColors; e < in; ++e) row[x * in + e] = 0.f;
              }
            } else if (from) {
              std::memcpy(row, from + (item * lh + y) * lw * in, sizeof(float) * lw * in);
            } else {
              const float* a = finer + (item * 2 * lh + 2 * y) * 2 * lw * in;
              PoolRow(a, a + 2 * lw * in, in, in, lw, row);
            }
          },
          [&](int64_t item, int64_t y0, int64_t y1, const float* src) {
            if (dst) {  // where the band did not write them itself
              std::memcpy(dst + (item * lh + y0) * lw * out, src, sizeof(float) * (y1 - y0) * lw * out);
            } else if (pool_to) {
              PoolRow(src, src + lw * out, out, out, lw / 2, pool_to + (item * (lh / 2) + y0 / 2) * (lw / 2) * out);
            }
          },
          &extract_times, dst ? Direct{dst, out} : Direct());
      pooled = pool_to;
    }
  };

  // 2. Both frames' features, but for the first stage's at the `recompute` finest levels.
  {
    int64_t region = 0;  // the pooled outputs': a block of their own, freed after the extraction
    std::vector<int64_t> places;
    for (int j = 0; j < levels; ++j) {
      const int last = last_kept(j, extract_keep);
      if (last >= 0) region = std::max(region, pooled_places(j, last, extract_keep, &places));
    }
    const Tensor pooled = Tensor::Empty({std::max<int64_t>(region, 1)});
    for (int j = 0; j < levels; ++j) {
      const int last = last_kept(j, extract_keep);
      if (last >= 0) sub_tree(j, last, extract_keep, pooled.data<float>());
    }
  }
  t.extract += Ms(clock);

  // 3. Level by level, coarse to fine: residual flow, forward (items k < n: a = frame 0, b = frame 1)
  // and backward (items n + k: a = frame 1, b = frame 0) in one batch; then the fusion's level.
  const int fusion_levels = config_.fusion_levels;
  Tensor v;  // the flow at the level below
  Tensor x;  // the fusion's output at the level below (at the coarsest, its aligned input)
  Tensor result = Tensor::Empty({n, kColors, h, w});
  BandTimes flow_times, fusion_times;
  for (int i = levels - 1; i >= 0; --i) {
    const int64_t lh = rows_at(i), lw = cols_at(i), width = config_.FeatureWidth(i);
    if (i < recompute) {
      clock = std::chrono::steady_clock::now();
      const Keep keep = remake_keep(i);
      std::vector<int64_t> places;
      int64_t region = 0;
      for (int k = 0; k < static_cast<int>(parts[i].size()); ++k) {
        if (keep(i, k)) region = std::max(region, pooled_places(i - k, k, keep, &places));
      }
      const Tensor pooled = Tensor::Empty({std::max<int64_t>(region, 1)});
      for (int k = 0; k < static_cast<int>(parts[i].size()); ++k) {
        if (keep(i, k)) sub_tree(i - k, k, keep, pooled.data<float>());
      }
      t.extract += Ms(clock);
    }
    // Item k's features at this level: `count` sources, a part each.
    const int count = static_cast<int>(parts[i].size());
    const auto features_of = [&](int64_t k, Source* sources) {
      for (int p = 0; p < count; ++p) {
        const int64_t c = base << p;
        sources[p] = {parts[i][p].data<float>() + k * lh * lw * c, c};
      }
    };

    const bool coarsest = i == levels - 1;
    Tensor next = Tensor::Empty({batch, lh, lw, 2});
    float* nd = next.data<float>();
    RunBand(
        plan->flow[i], workspace, scratchpad, [](int64_t) {},
        [&](int64_t item, int64_t y, float* row) {
          Source a[kMaxSubLevels], b[kMaxSubLevels];
          features_of(item, a);
          features_of((item + n) % batch, b);
          thread_local std::vector<float> up_row;  // this row's upsampled flow
          up_row.resize(static_cast<size_t>(lw * 2));
          const float* up = up_row.data();
          if (!coarsest) UpsampleFlowRow(v, item, y, up_row.data());
          for (int64_t x = 0; x < lw; ++x) {
            float* o = row + x * 2 * width;
            for (int p = 0; p < count; ++p) {
              std::memcpy(o, a[p].data + (y * lw + x) * a[p].channels, sizeof(float) * a[p].channels);
              o += a[p].channels;
            }
            if (!coarsest) {
              WarpPixel(b, count, lh, lw, x, y, up[2 * x], up[2 * x + 1], o);
              continue;
            }
            for (int p = 0; p < count; ++p) {
              std::memcpy(o, b[p].data + (y * lw + x) * b[p].channels, sizeof(float) * b[p].channels);
              o += b[p].channels;
            }
          }
        },
        [&](int64_t item, int64_t y0, int64_t y1, const float* src) {
          float* d = nd + (item * lh + y0) * lw * 2;
          const int64_t count = (y1 - y0) * lw * 2;
          if (coarsest) {
            std::memcpy(d, src, sizeof(float) * count);
            return;
          }
          for (int64_t y = y0; y < y1; ++y) UpsampleFlowRow(v, item, y, d + (y - y0) * lw * 2);
          for (int64_t e = 0; e < count; ++e) d[e] = src[e] + d[e];
        },
        &flow_times);
    v = next;
    if (i >= fusion_levels) {
      parts[i].clear();
      continue;
    }

    // The fusion's inputs at this level: [frame 0 warped by t * backward flow (image, features),
    // frame 1 warped by (1 - t) * forward flow, those two flows], `aligned` channels of `pixel`.
    const int64_t part = kColors + width, aligned = 2 * (part + 2);
    const float* cd = colors[i].data<float>();
    const float* flow = v.data<float>();
    const auto align = [&](int64_t k, int64_t y, float* row, int64_t pixel) {
      const float s0 = dt[k], s1 = 1.f - dt[k];
      Source from0[1 + kMaxSubLevels] = {{cd + k * lh * lw * kColors, kColors}};
      Source from1[1 + kMaxSubLevels] = {{cd + (n + k) * lh * lw * kColors, kColors}};
      features_of(k, from0 + 1);
      features_of(n + k, from1 + 1);
      const float* backward = flow + ((n + k) * lh + y) * lw * 2;
      const float* forward = flow + (k * lh + y) * lw * 2;
      for (int64_t xx = 0; xx < lw; ++xx) {
        float* o = row + xx * pixel;
        const float b0 = backward[2 * xx] * s0, b1 = backward[2 * xx + 1] * s0;
        const float f0 = forward[2 * xx] * s1, f1 = forward[2 * xx + 1] * s1;
        WarpPixel(from0, 1 + count, lh, lw, xx, y, b0, b1, o);
        WarpPixel(from1, 1 + count, lh, lw, xx, y, f0, f1, o + part);
        o[2 * part] = b0;
        o[2 * part + 1] = b1;
        o[2 * part + 2] = f0;
        o[2 * part + 3] = f1;
      }
    };
    if (i == fusion_levels - 1) {
      clock = std::chrono::steady_clock::now();
      x = Tensor::Empty({n, lh, lw, aligned});
      float* xd = x.data<float>();
      ParallelFor(0, n * lh, 1, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) align(r / lh, r % lh, xd + r * lw * aligned, aligned);
      });
      t.align += Ms(clock);
    } else {
      // The decoder's level: the coarser output's nearest x2 and 2x2 convolution (as four phase
      // convolutions of its rows) beside the aligned channels, two 3x3 convolutions; at level 0
      // the 1x1 to RGB.
      const Band& band = plan->fusion[i];
      const std::array<ConvStep, 4>& phases = plan->resize[i];
      const int64_t ch = rows_at(i + 1), cw = cols_at(i + 1), cin = x.size(3), coarse = plan->resize_rows[i];
      const int64_t filters = phases[0].conv->out, pixel = aligned + filters;
      std::array<Tensor, 4> phase_out;
      for (auto& p : phase_out) p = Tensor::Empty({n, coarse, cw, filters});
      Tensor coarse_in = coarse < ch ? Tensor::Empty({n, coarse, cw, cin}) : x;
      // bfloat16 bits, 2 bytes each, stored as the 2-byte type the tensor has
      Tensor coarse16 = bf16_ ? Tensor::Empty({n, coarse, cw, cin}, DType::kFloat16) : Tensor();
      int64_t coarse_first = 0;
      const float* xd = x.data<float>();
      Tensor out = i > 0 ? Tensor::Empty({n, lh, lw, band.steps.back().conv->out}) : Tensor();
      float* od = i > 0 ? out.data<float>() : result.data<float>();
      const int64_t oc = band.steps.back().conv->out;
      RunBand(
          band, workspace, scratchpad,
          [&](int64_t s) {
            coarse_first = std::min(s / 2, ch - coarse);
            if (coarse < ch) {
              for (int64_t k = 0; k < n; ++k) {
                std::memcpy(coarse_in.data<float>() + k * coarse * cw * cin, xd + (k * ch + coarse_first) * cw * cin,
                            sizeof(float) * coarse * cw * cin);
              }
            }
            const void* from = coarse_in.data();
            if (bf16_) {
              ToBf16(coarse_in.data<float>(), static_cast<uint16_t*>(coarse16.data()), n * coarse * cw * cin);
              from = coarse16.data();
            }
            for (int p = 0; p < 4; ++p) RunStep(phases[p], from, phase_out[p].data<float>(), scratchpad);
          },
          [&](int64_t k, int64_t y, float* row) {
            align(k, y, row, pixel);
            const int a = static_cast<int>(y % 2);
            const float* p0 = phase_out[2 * a].data<float>() + ((k * coarse) + y / 2 - coarse_first) * cw * filters;
            const float* p1 = phase_out[2 * a + 1].data<float>() + ((k * coarse) + y / 2 - coarse_first) * cw * filters;
            for (int64_t xx = 0; xx < lw; ++xx) {
              std::memcpy(row + xx * pixel + aligned, (xx % 2 ? p1 : p0) + (xx / 2) * filters, sizeof(float) * filters);
            }
          },
          [&](int64_t k, int64_t y0, int64_t y1, const float* src) {
            if (i > 0) {
              std::memcpy(od + (k * lh + y0) * lw * oc, src, sizeof(float) * (y1 - y0) * lw * oc);
              return;
            }
            const int64_t hw = lh * lw;
            for (int64_t y = y0; y < y1; ++y) {
              for (int c = 0; c < kColors; ++c) {
                float* d = od + (k * kColors + c) * hw + y * lw;
                const float* r = src + (y - y0) * lw * kColors + c;
                for (int64_t xx = 0; xx < lw; ++xx) d[xx] = r[xx * kColors];
              }
            }
          },
          &fusion_times, i > 0 ? Direct{od, oc} : Direct());
      x = out;
    }
    parts[i].clear();
    colors[i] = Tensor();
  }
  t.flow_warp = flow_times.fill;
  t.flow = flow_times.run;
  t.align += fusion_times.fill;
  t.fusion = fusion_times.run;
  return result;
}

}  // namespace onednn
}  // namespace film
