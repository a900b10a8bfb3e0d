#include "film_net.h"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
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
constexpr float kSlope = 0.2f;
constexpr int kColors = 3;

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

// [N, h, w, 2] -> [N, 2h, 2w, 2]: F.interpolate(2 * flow, size=(2h, 2w), mode='bilinear',
// align_corners=False). Source row of output row y: max(0, (y + 0.5) / 2 - 0.5), its lower
// neighbour clamped; the weights are 0.25 and 0.75 (or 1 and 0 at the first row), exact.
Tensor UpsampleFlow(const Tensor& flow) {
  const int64_t n = flow.size(0), h = flow.size(1), w = flow.size(2), oh = 2 * h, ow = 2 * w;
  Tensor out = Tensor::Empty({n, oh, ow, 2});
  const float* s = flow.data<float>();
  float* d = out.data<float>();
  // index, neighbour and weights of one output coordinate
  auto source = [](int64_t o, int64_t in, int64_t* i0, int64_t* i1, float* w0, float* w1) {
    const float src = std::max(0.f, (static_cast<float>(o) + 0.5f) * 0.5f - 0.5f);
    *i0 = static_cast<int64_t>(src);
    *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
    *w1 = src - static_cast<float>(*i0);
    *w0 = 1.f - *w1;
  };
  ParallelFor(0, n * oh, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t k = row / oh, y = row % oh;
      int64_t y0, y1;
      float h0, h1;
      source(y, h, &y0, &y1, &h0, &h1);
      const float* r0 = s + (k * h + y0) * w * 2;
      const float* r1 = s + (k * h + y1) * w * 2;
      float* o = d + row * ow * 2;
      for (int64_t x = 0; x < ow; ++x) {
        int64_t x0, x1;
        float w0, w1;
        source(x, w, &x0, &x1, &w0, &w1);
        for (int c = 0; c < 2; ++c) {
          const float a = 2.f * r0[x0 * 2 + c], b = 2.f * r0[x1 * 2 + c];
          const float e = 2.f * r1[x0 * 2 + c], f = 2.f * r1[x1 * 2 + c];
          o[x * 2 + c] = (a * w0 + b * w1) * h0 + (e * w0 + f * w1) * h1;
        }
      }
    }
  });
  return out;
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

// The four phases of a 2x2 "resize convolution" (phase 2a + b: output pixels (2y + a, 2x + b)),
// each [n, h, w, c], interleaved into dst [n, 2h, 2w, .] with pixels `pixel` floats apart.
void Interleave(const std::array<Tensor, 4>& phases, float* dst, int64_t pixel) {
  const int64_t n = phases[0].size(0), h = phases[0].size(1), w = phases[0].size(2), c = phases[0].size(3);
  ParallelFor(0, n * 2 * h, 4, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t k = row / (2 * h), y = row % (2 * h), a = y % 2;
      float* out = dst + row * 2 * w * pixel;
      for (int b = 0; b < 2; ++b) {
        const float* in = phases[2 * a + b].data<float>() + (k * h + y / 2) * w * c;
        for (int64_t x = 0; x < w; ++x) std::memcpy(out + (2 * x + b) * pixel, in + x * c, sizeof(float) * c);
      }
    }
  });
}

// Copies `pixels` pixels of `c` floats, `from` floats apart in src, `to` floats apart in dst.
void CopyPixels(const float* src, int64_t from, float* dst, int64_t to, int64_t pixels, int64_t c) {
  ParallelFor(0, pixels, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) std::memcpy(dst + p * to, src + p * from, sizeof(float) * c);
  });
}

}  // namespace

// One convolution, prepared: its weights, its Winograd form where it has one, and its weights in
// the layouts direct convolutions asked for (few: most sizes ask for the same).
struct FilmNet::Conv {
  std::string name;
  Tensor oihw, bias;
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

// A convolution at one (batch, size): Winograd's plan, or a direct oneDNN convolution.
struct ConvStep {
  const FilmNet::Conv* conv = nullptr;
  int64_t n = 0, h = 0, w = 0;
  std::shared_ptr<const Winograd::Plan> winograd;
  dnnl::convolution_forward primitive;
  memory::desc src_md, weights_md, bias_md, dst_md;
  Tensor weights;
  size_t scratchpad = 0;
};

ConvStep MakeStep(const FilmNet::Conv& conv, int64_t n, int64_t h, int64_t w) {
  ConvStep s;
  s.conv = &conv;
  s.n = n;
  s.h = h;
  s.w = w;
  if (conv.winograd) s.winograd = conv.winograd->PlanFor(n, h, w);
  if (s.winograd) return s;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (conv.leaky) {
    dnnl::post_ops ops;
    compat::AppendLeakyRelu(ops, kSlope);
    attr.set_post_ops(ops);
  }
  const auto pd = ConvPd(memory::desc({n, conv.in, h, w}, kF32, Tag::nhwc),
                         memory::desc({conv.out, conv.in, conv.kh, conv.kw}, kF32, Tag::any),
                         memory::desc({conv.out}, kF32, Tag::a), memory::desc({n, conv.out, h, w}, kF32, Tag::nhwc),
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

// src: dense [n, h, w, in]; dst: [n, h, w, out] with pixels `pixel` floats apart (a channel range
// of a wider NHWC tensor), or dense where pixel is 0.
void RunStep(const ConvStep& s, const float* src, float* dst, int64_t pixel, const memory& scratchpad) {
  const int64_t out = s.conv->out;
  if (pixel == 0) pixel = out;
  if (s.winograd) {
    s.conv->winograd->Run(*s.winograd, src, dst, pixel);
    return;
  }
  Tensor dense;
  float* to = dst;
  if (pixel != out) {
    dense = Tensor::Empty({s.n, s.h, s.w, out});
    to = dense.data<float>();
  }
  dnnl::stream stream(CpuEngine());
  s.primitive.execute(stream, {{DNNL_ARG_SRC, memory(s.src_md, CpuEngine(), const_cast<float*>(src))},
                               {DNNL_ARG_WEIGHTS, memory(s.weights_md, CpuEngine(), s.weights.data())},
                               {DNNL_ARG_BIAS, memory(s.bias_md, CpuEngine(), s.conv->bias.data())},
                               {DNNL_ARG_DST, memory(s.dst_md, CpuEngine(), to)},
                               {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
  if (dense.defined()) CopyPixels(to, out, dst, pixel, s.n * s.h * s.w, out);
}

// Runs steps one after another from src ([n, h, w, in], dense); returns the last one's output.
Tensor RunChain(const std::vector<ConvStep>& steps, const Tensor& src, const memory& scratchpad) {
  Tensor x = src;
  for (const ConvStep& s : steps) {
    Tensor y = Tensor::Empty({s.n, s.h, s.w, s.conv->out});
    RunStep(s, x.data<float>(), y.data<float>(), 0, scratchpad);
    x = y;
  }
  return x;
}

}  // namespace

struct FilmNet::Plan {
  std::vector<std::vector<ConvStep>> flow;       // [level]: its predictor's layers, batch 2n
  std::vector<std::array<ConvStep, 3>> fusion;   // [level < F - 1]: (unused), 3x3, 3x3, batch n
  std::vector<std::array<ConvStep, 4>> resize;   // [level < F - 1]: the 2x2's phases, at level + 1
  ConvStep output;                               // 1x1 to RGB, batch n
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

FilmNet::FilmNet(const std::map<std::string, Tensor>& weights) {
  WeightSet set(weights);
  FilmNetConfig& cfg = config_;

  // The extractor: extract.extract_sublevels.convs.{j}.{k}.0.{weight,bias}.
  const std::string ex = "extract.extract_sublevels.convs.";
  cfg.filters = set.Peek(ex + "0.0.0.weight", 4).size(0);
  while (set.Has(ex + std::to_string(cfg.sub_levels) + ".0.0.weight")) ++cfg.sub_levels;
  if (cfg.sub_levels > 12 || (cfg.filters << (cfg.sub_levels - 1)) > 4096) {
    throw std::invalid_argument("FilmNet: tensor '" + ex + std::to_string(cfg.sub_levels - 1) +
                                ".0.0.weight': an extractor this deep and wide is not one FILM has");
  }
  std::vector<std::array<ConvWeights, 2>> stages;
  for (int j = 0; j < cfg.sub_levels; ++j) {
    std::array<ConvWeights, 2> stage;
    const int64_t width = cfg.filters << j;
    for (int k = 0; k < 2; ++k) {
      const std::string name = ex + std::to_string(j) + "." + std::to_string(k) + ".0.";
      const int64_t in = k == 1 ? width : j == 0 ? kColors : width / 2;
      const std::string why = "extractor stage " + std::to_string(j) + ", width " + std::to_string(width);
      stage[k].weight = set.Take(name + "weight", {width, in, 3, 3}, why);
      stage[k].bias = set.Take(name + "bias", {width}, why);
    }
    stages.push_back(stage);
  }
  extractor_.reset(new Engine(stages, Precision::kF32));

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
    if (k == 3 && Winograd::Suits(in, out)) c->winograd = std::make_shared<Winograd>(CpuEngine(), c->oihw, c->bias);
    return c;
  };

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

std::shared_ptr<const FilmNet::Plan> FilmNet::PlanFor(int64_t n, int64_t h, int64_t w, int levels) const {
  const Key key{n, h, w, levels, omp_get_max_threads()};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = plans_.begin(); it != plans_.end(); ++it) {
      if (it->first != key) continue;
      plans_.splice(plans_.end(), plans_, it);
      return it->second;
    }
  }
  auto plan = std::make_shared<Plan>();
  auto add = [&](const Conv& conv, int64_t batch, int level) {
    ConvStep s = MakeStep(conv, batch, h >> level, w >> level);
    plan->scratchpad = std::max(plan->scratchpad, s.scratchpad);
    return s;
  };
  plan->flow.resize(levels);
  for (int i = 0; i < levels; ++i) {
    for (const auto& conv : PredictorOf(i)) plan->flow[i].push_back(add(*conv, 2 * n, i));
  }
  plan->fusion.resize(fusion_.size());
  plan->resize.resize(fusion_.size());
  for (size_t i = 0; i < fusion_.size(); ++i) {
    for (int k = 1; k < 3; ++k) plan->fusion[i][k] = add(*fusion_[i][k], n, static_cast<int>(i));
    for (int p = 0; p < 4; ++p) plan->resize[i][p] = add(*resize_[i][p], n, static_cast<int>(i) + 1);
  }
  plan->output = add(*output_, n, 0);

  std::lock_guard<std::mutex> lock(mutex_);
  plans_.emplace_back(key, std::move(plan));
  if (plans_.size() > kMaxPlans) plans_.pop_front();
  return plans_.back().second;
}

Tensor FilmNet::Run(const Tensor& x0, const Tensor& x1, const std::vector<float>& dt, int levels,
                    FilmNetTimes* times) const {
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
  std::shared_ptr<const Plan> plan = PlanFor(n, h, w, levels);
  FilmNetTimes local;
  FilmNetTimes& t = times ? *times : local;
  t = FilmNetTimes();
  auto clock = std::chrono::steady_clock::now();

  const int64_t batch = 2 * n;  // frames 0 then frames 1
  Tensor scratch = Bytes(plan->scratchpad);
  const memory scratchpad(memory::desc({static_cast<int64_t>(scratch.numel())}, memory::data_type::u8, Tag::a),
                          CpuEngine(), scratch.data());

  // 1. Both image pyramids in one batch, and both frames' features.
  std::vector<Tensor> images(levels);
  images[0] = Tensor::Empty({batch, kColors, h, w});
  std::memcpy(images[0].data(), x0.data(), x0.nbytes());
  std::memcpy(images[0].data<float>() + x0.numel(), x1.data(), x1.nbytes());
  for (int i = 1; i < levels; ++i) images[i] = AvgPool2x2(images[i - 1]);
  std::vector<Tensor> features = extractor_->Run(images, Layout::kNhwc);  // [2n, h_i, w_i, width_i]
  const int fusion_levels = config_.fusion_levels;
  std::vector<Tensor> colors(fusion_levels);  // the images NHWC, for warping
  for (int i = 0; i < fusion_levels; ++i) colors[i] = ColorsLast(images[i]);
  images.clear();
  t.extract += Ms(clock);

  // 2. Residual flow, coarse to fine, forward (items k < n: a = frame 0, b = frame 1) and backward
  // (items n + k: a = frame 1, b = frame 0) in one batch. flows[i]: the flow at level i.
  std::vector<Tensor> flows(fusion_levels);
  Tensor v;
  for (int i = levels - 1; i >= 0; --i) {
    clock = std::chrono::steady_clock::now();
    const Tensor& f = features[i];
    const int64_t lh = f.size(1), lw = f.size(2), width = f.size(3), plane = lh * lw * width;
    Tensor input = Tensor::Empty({batch, lh, lw, 2 * width});
    Tensor up = i == levels - 1 ? Tensor() : UpsampleFlow(v);
    const float* fd = f.data<float>();
    float* in = input.data<float>();
    const float* upd = up.defined() ? up.data<float>() : nullptr;
    ParallelFor(0, batch * lh, 1, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t k = row / lh, y = row % lh;
        const float* a = fd + row * lw * width;
        const Source b{fd + ((k + n) % batch) * plane, width};
        float* out = in + row * lw * 2 * width;
        for (int64_t x = 0; x < lw; ++x) {
          std::memcpy(out + x * 2 * width, a + x * width, sizeof(float) * width);
          if (upd) {
            const float* u = upd + (row * lw + x) * 2;
            WarpPixel(&b, 1, lh, lw, x, y, u[0], u[1], out + x * 2 * width + width);
          } else {
            std::memcpy(out + x * 2 * width + width, b.data + (y * lw + x) * width, sizeof(float) * width);
          }
        }
      }
    });
    t.flow_warp += Ms(clock);
    clock = std::chrono::steady_clock::now();
    Tensor residual = RunChain(plan->flow[i], input, scratchpad);
    input = Tensor();
    t.flow += Ms(clock);
    if (up.defined()) {
      float* r = residual.data<float>();
      const int64_t count = residual.numel();
      ParallelFor(0, count, 1 << 14, [&](int64_t begin, int64_t end) {
        for (int64_t e = begin; e < end; ++e) r[e] = r[e] + upd[e];
      });
    }
    v = residual;
    if (i < fusion_levels) flows[i] = v;
    if (i >= fusion_levels) features[i] = Tensor();
  }
  v = Tensor();

  // 3. The fusion's inputs per level: [frame 0 warped by t * backward flow (image, features),
  // frame 1 warped by (1 - t) * forward flow, those two flows], with room after them for the
  // coarser level's upsampled result.
  clock = std::chrono::steady_clock::now();
  std::vector<Tensor> aligned(fusion_levels);
  std::vector<int64_t> aligned_channels(fusion_levels);
  for (int i = 0; i < fusion_levels; ++i) {
    const Tensor& f = features[i];
    const int64_t lh = f.size(1), lw = f.size(2), width = f.size(3), part = kColors + width;
    const int64_t channels = 2 * (part + 2), pixel = channels + (i < fusion_levels - 1 ? config_.fusion_filters[i] : 0);
    aligned_channels[i] = channels;
    aligned[i] = Tensor::Empty({n, lh, lw, pixel});
    const float* fd = f.data<float>();
    const float* cd = colors[i].data<float>();
    const float* flow = flows[i].data<float>();
    float* out = aligned[i].data<float>();
    ParallelFor(0, n * lh, 1, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t k = row / lh, y = row % lh;
        const float s0 = dt[k], s1 = 1.f - dt[k];
        const Source from0[2] = {{cd + k * lh * lw * kColors, kColors}, {fd + k * lh * lw * width, width}};
        const Source from1[2] = {{cd + (n + k) * lh * lw * kColors, kColors}, {fd + (n + k) * lh * lw * width, width}};
        const float* backward = flow + ((n + k) * lh + y) * lw * 2;
        const float* forward = flow + (k * lh + y) * lw * 2;
        for (int64_t x = 0; x < lw; ++x) {
          float* o = out + (row * lw + x) * pixel;
          const float b0 = backward[2 * x] * s0, b1 = backward[2 * x + 1] * s0;
          const float f0 = forward[2 * x] * s1, f1 = forward[2 * x + 1] * s1;
          WarpPixel(from0, 2, lh, lw, x, y, b0, b1, o);
          WarpPixel(from1, 2, lh, lw, x, y, f0, f1, o + part);
          o[2 * part] = b0;
          o[2 * part + 1] = b1;
          o[2 * part + 2] = f0;
          o[2 * part + 3] = f1;
        }
      }
    });
    features[i] = Tensor();
    colors[i] = Tensor();
    flows[i] = Tensor();
  }
  t.align += Ms(clock);

  // 4. The decoder, coarse to fine: nearest x2, the 2x2 convolution into its place beside the
  // level's aligned channels, two 3x3 convolutions; then 1x1 to RGB.
  clock = std::chrono::steady_clock::now();
  Tensor x = aligned[fusion_levels - 1];
  aligned[fusion_levels - 1] = Tensor();
  for (int i = fusion_levels - 2; i >= 0; --i) {
    const std::array<ConvStep, 3>& steps = plan->fusion[i];
    std::array<Tensor, 4> phases;
    for (int p = 0; p < 4; ++p) {
      const ConvStep& s = plan->resize[i][p];
      phases[p] = Tensor::Empty({s.n, s.h, s.w, s.conv->out});
      RunStep(s, x.data<float>(), phases[p].data<float>(), 0, scratchpad);
    }
    x = Tensor();
    Interleave(phases, aligned[i].data<float>() + aligned_channels[i], aligned[i].size(3));
    phases = {};
    Tensor mid = Tensor::Empty({n, aligned[i].size(1), aligned[i].size(2), steps[1].conv->out});
    RunStep(steps[1], aligned[i].data<float>(), mid.data<float>(), 0, scratchpad);
    aligned[i] = Tensor();
    x = Tensor::Empty({n, mid.size(1), mid.size(2), steps[2].conv->out});
    RunStep(steps[2], mid.data<float>(), x.data<float>(), 0, scratchpad);
  }
  Tensor rgb = Tensor::Empty({n, h, w, kColors});
  RunStep(plan->output, x.data<float>(), rgb.data<float>(), 0, scratchpad);
  x = Tensor();
  Tensor result = Tensor::Empty({n, kColors, h, w});
  const float* s = rgb.data<float>();
  float* d = result.data<float>();
  const int64_t hw = h * w;
  ParallelFor(0, n * hw, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t k = p / hw, at = p % hw;
      for (int c = 0; c < kColors; ++c) d[(k * kColors + c) * hw + at] = s[p * kColors + c];
    }
  });
  t.fusion += Ms(clock);
  return result;
}

}  // namespace onednn
}  // namespace film
