#include "engine.h"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "compat.h"
#include "graph.h"
#include "winograd.h"

namespace film {
namespace onednn {

__attribute__((target_clones("avx512f", "avx2", "default"))) void PoolRow(const float* a, const float* b, int64_t pixel,
                                                                           int64_t channels, int64_t w, float* dst) {
  for (int64_t x = 0; x < w; ++x) {
    const float *a0 = a + 2 * x * pixel, *a1 = a0 + pixel, *b0 = b + 2 * x * pixel, *b1 = b0 + pixel;
    float* d = dst + x * channels;
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) d[c] = (((a0[c] + a1[c]) + b0[c]) + b1[c]) * 0.25f;
  }
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr auto kBf16 = memory::data_type::bf16;
constexpr float kSlope = 0.2f;

// Never destroyed: runs in flight when the process exits (a worker_thread's, say) finish on it
// after exit() has started destroying statics (Executor's atexit handler waits for them).
dnnl::engine& CpuEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// Scratch space is handed to each execution, so that runs on several threads share no state.
dnnl::primitive_attr Attr(bool leaky_relu) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (leaky_relu) {
    dnnl::post_ops ops;
    compat::AppendLeakyRelu(ops, kSlope);
    attr.set_post_ops(ops);
  }
  return attr;
}

memory::desc Any(int64_t n, int64_t c, int64_t h, int64_t w, memory::data_type type) {
  return memory::desc({n, c, h, w}, type, Tag::any);
}

// A 3x3 convolution of `in` to `out` channels on an [n, in, h, w] source; bias in float32 at any precision.
dnnl::convolution_forward::primitive_desc ConvPd(int64_t n, int64_t in, int64_t out, int64_t h, int64_t w,
                                                 memory::data_type type) {
  return compat::ConvPd(CpuEngine(), Any(n, in, h, w, type), memory::desc({out, in, 3, 3}, type, Tag::any),
                        memory::desc({out}, kF32, Tag::a), Any(n, out, h, w, type), /*pad=*/1, Attr(true));
}

// Input channels the first convolution runs with. brgconv in NHWC runs 3 channels 3x slower than
// 4 zero-padded ones in fp32, and bf16 on AMX 5x slower than 16 (measured, 256x256, 1 thread:
// 7.8 -> 2.5 ms and 9.1 -> 1.8 ms). Layouts that block channels (AVX2's nChw8c) are left alone.
int64_t FirstConvChannels(memory::data_type type) {
  const auto pd = ConvPd(1, 3, 64, 64, 64, type);
  if (pd.src_desc() != memory::desc({1, 3, 64, 64}, type, Tag::nhwc)) return 3;
  return type == kBf16 ? 16 : 4;
}

// 2x2 average pooling, stride 2 (floor sizes), float32 NHWC: src's pixels `pixel` floats apart (a
// channel range of a wider tensor), dst dense. oneDNN runs strided sources only by its reference code.
void PoolNhwc(const float* src, int64_t pixel, float* dst, int64_t n, int64_t channels, int64_t h, int64_t w) {
  const int64_t oh = h / 2, ow = w / 2;
#pragma omp parallel for
  for (int64_t row = 0; row < n * oh; ++row) {
    const float* a = src + ((row / oh) * h + 2 * (row % oh)) * w * pixel;
    PoolRow(a, a + w * pixel, pixel, channels, ow, dst + row * ow * channels);
  }
}

// Bytes from the addon's caching CPU allocator.
Tensor Bytes(size_t size) { return Tensor::Empty({static_cast<int64_t>(std::max<size_t>(size, 1))}, DType::kUint8); }

// [out, in, 3, 3] float32 with its input channels zero-padded to `in`.
Tensor PadInputChannels(const Tensor& oihw, int64_t in) {
  const int64_t out = oihw.size(0), have = oihw.size(1), k = oihw.size(2) * oihw.size(3);
  Tensor padded = Tensor::Zeros({out, in, oihw.size(2), oihw.size(3)});
  for (int64_t o = 0; o < out; ++o) {
    std::copy_n(oihw.data<float>() + o * have * k, have * k, padded.data<float>() + o * in * k);
  }
  return padded;
}

// Copies a plain OIHW weight into the layout `md` describes.
Tensor ReorderWeights(const Tensor& oihw, const memory::desc& md) {
  Tensor out = Bytes(md.get_size());
  // From float32 OIHW to md's type and layout: bf16 weights are rounded here, once.
  memory src(memory::desc(memory::dims(oihw.sizes().begin(), oihw.sizes().end()), kF32, Tag::oihw), CpuEngine(),
             oihw.data());
  memory dst(md, CpuEngine(), out.data());
  dnnl::stream stream(CpuEngine());
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  return out;
}

}  // namespace

// The weights, in the layout the convolutions chose for a typical frame.
struct Engine::Prepared {
  struct Conv {
    Tensor oihw;           // float32, contiguous: kept to reorder again if a size wants another layout
    Tensor bias;           // float32, contiguous
    memory::desc weights_md;   // the layout `weights` is in
    Tensor weights;        // bytes
    std::shared_ptr<const Winograd> winograd;  // float32 layers it suits run this way instead
  };
  std::vector<std::array<Conv, 2>> stages;
  int64_t channels = 0;
  memory::data_type type = kF32;  // of weights and activations
  int64_t first_in = 3;           // input channels of the first convolution, zero-padded past 3
};

// Everything a run at one (batch, size, levels, threads) needs, made once: primitives, the memory
// descriptors of the buffers they pass along, and when each buffer is last used.
struct Engine::Plan {
  // kZeroed: a temporary that starts as zeros; kView: a part of the temporary `index`.
  enum class Kind { kInput, kOutput, kTemp, kZeroed, kView };
  struct Buffer {
    Kind kind;
    int index;          // pyramid level (input), output level (output) or buffer (view)
    memory::desc md;    // for an output: its channel range inside the level
    size_t last_use = 0;
  };
  struct Op {
    dnnl::primitive primitive;
    std::vector<std::pair<int, int>> buffers;   // (DNNL_ARG_*, buffer)
    std::vector<std::pair<int, memory>> fixed;  // weights and bias
    const Winograd* winograd = nullptr;         // instead of `primitive`: SRC to DST, NHWC
    std::shared_ptr<const Winograd::Plan> winograd_plan;
    bool pool = false;                          // instead of `primitive`: PoolNhwc, SRC to DST
    // Where the Winograd's DST or the pooling's SRC is a channel range of an NHWC level: its first
    // float and the floats between its pixels.
    int64_t offset = 0, pixel = 0;
  };
  std::vector<Buffer> buffers;
  std::vector<Op> ops;
  std::vector<std::array<int64_t, 4>> output_shapes;  // as stored: [N, C, H, W] or [N, H, W, C]
  size_t scratchpad = 0;
  std::vector<Tensor> weights;  // any weights reordered for this plan alone

  int Add(Kind kind, int index, memory::desc md) {
    buffers.push_back({kind, index, std::move(md)});
    return static_cast<int>(buffers.size()) - 1;
  }
  template <typename Pd>
  Op& Push(dnnl::primitive primitive, const Pd& pd) {
    scratchpad = std::max(scratchpad, pd.scratchpad_desc().get_size());
    ops.push_back({std::move(primitive), {}, {}});
    return ops.back();
  }
  // A buffer in layout `want`: `buffer` itself, or a reorder of it into a new temporary.
  int As(int buffer, const memory::desc& want) {
    if (buffers[buffer].md == want) return buffer;
    const int out = Add(Kind::kTemp, -1, want);
    dnnl::reorder::primitive_desc pd(CpuEngine(), buffers[buffer].md, CpuEngine(), want, Attr(false));
    Push(dnnl::reorder(pd), pd).buffers = {{DNNL_ARG_FROM, buffer}, {DNNL_ARG_TO, out}};
    return out;
  }
};

Engine::Engine(const std::vector<std::array<ConvWeights, 2>>& stages, Precision precision) : prepared_(new Prepared) {
  if (stages.empty()) throw std::invalid_argument("oneDNN engine: no stages");
  if (precision == Precision::kBf16 && !HasBf16()) {
    throw std::invalid_argument("oneDNN engine: bf16 needs a CPU whose oneDNN ISA has bf16, and this one's is " + Isa());
  }
  prepared_->channels = stages[0][0].weight.size(0);
  prepared_->type = precision == Precision::kBf16 ? kBf16 : kF32;
  prepared_->first_in = FirstConvChannels(prepared_->type);
  for (const auto& stage : stages) {
    std::array<Prepared::Conv, 2> convs;
    for (int k = 0; k < 2; ++k) {
      Prepared::Conv& c = convs[k];
      c.oihw = stage[k].weight;
      if (prepared_->stages.empty() && k == 0 && prepared_->first_in > c.oihw.size(1)) {
        c.oihw = PadInputChannels(c.oihw, prepared_->first_in);
      }
      c.bias = stage[k].bias;
      const int64_t out = c.oihw.size(0), in = c.oihw.size(1);
      // The layout the convolution picks for a 64x64 frame; other sizes almost always pick the same.
      c.weights_md = ConvPd(1, in, out, 64, 64, prepared_->type).weights_desc();
      c.weights = ReorderWeights(c.oihw, c.weights_md);
      if (prepared_->type == kF32 && Winograd::Suits(in, out)) c.winograd = std::make_shared<Winograd>(CpuEngine(), c.oihw, c.bias);
    }
    prepared_->stages.push_back(std::move(convs));
  }
}

Engine::~Engine() = default;

std::string Engine::Isa() { return compat::IsaName(dnnl::get_effective_cpu_isa()); }

std::string Engine::Version() { return compat::RuntimeVersion(); }

bool Engine::HasBf16() {
  // oneDNN 2.x names; 3.x adds the fp16 ISAs, which have bf16 too.
  static const char* const kWithBf16[] = {"avx512_core_bf16", "avx512_core_amx", "avx512_core_fp16",
                                          "avx512_core_amx_fp16"};
  const std::string isa = Isa();
  return std::any_of(std::begin(kWithBf16), std::end(kWithBf16), [&](const char* name) { return isa == name; });
}

std::shared_ptr<const Engine::Plan> Engine::PlanFor(const std::vector<Tensor>& pyramid, Layout layout) const {
  const Tensor& top = pyramid[0];
  const int64_t n = top.size(0), h0 = top.size(2), w0 = top.size(3);
  const int threads = omp_get_max_threads();
  const Key key{n, h0, w0, pyramid.size(), threads, layout};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = plans_.begin(); it != plans_.end(); ++it) {
      if (it->first != key) continue;
      plans_.splice(plans_.end(), plans_, it);
      return it->second;
    }
  }

  auto plan = std::make_shared<Plan>();
  const int levels = static_cast<int>(pyramid.size());
  const Graph graph = BuildGraph(levels, prepared_->channels, static_cast<int>(prepared_->stages.size()));
  std::vector<memory::desc> outputs;
  const bool nhwc = layout == Layout::kNhwc;
  for (int o = 0; o < levels; ++o) {
    const int64_t c = graph.output_channels[o], h = h0 >> o, w = w0 >> o;
    plan->output_shapes.push_back(nhwc ? std::array<int64_t, 4>{n, h, w, c} : std::array<int64_t, 4>{n, c, h, w});
    outputs.emplace_back(memory::dims{n, c, h, w}, kF32, nhwc ? Tag::nhwc : Tag::nchw);
  }

  // Convolution k of stage j on `src`; returns its output buffer.
  auto conv = [&](int src, int j, int k) {
    const Prepared::Conv& c = prepared_->stages[j][k];
    const int64_t out = c.oihw.size(0), in = c.oihw.size(1);
    const memory::dims d = compat::DimsOf(plan->buffers[src].md);
    std::shared_ptr<const Winograd::Plan> winograd = c.winograd ? c.winograd->PlanFor(d[0], d[2], d[3]) : nullptr;
    if (winograd) {
      const int input = plan->As(src, memory::desc({d[0], in, d[2], d[3]}, kF32, Tag::nhwc));
      const int dst = plan->Add(Plan::Kind::kTemp, -1, memory::desc({d[0], out, d[2], d[3]}, kF32, Tag::nhwc));
      plan->ops.push_back({});
      Plan::Op& op = plan->ops.back();
      op.buffers = {{DNNL_ARG_SRC, input}, {DNNL_ARG_DST, dst}};
      op.winograd = c.winograd.get();
      op.winograd_plan = std::move(winograd);
      return dst;
    }
    auto pd = ConvPd(d[0], in, out, d[2], d[3], prepared_->type);
    memory weights(c.weights_md, CpuEngine(), c.weights.data());
    if (pd.weights_desc() != c.weights_md) {
      plan->weights.push_back(ReorderWeights(c.oihw, pd.weights_desc()));
      weights = memory(pd.weights_desc(), CpuEngine(), plan->weights.back().data());
    }
    const int input = plan->As(src, pd.src_desc());
    const int dst = plan->Add(Plan::Kind::kTemp, -1, pd.dst_desc());
    Plan::Op& op = plan->Push(dnnl::convolution_forward(pd), pd);
    op.buffers = {{DNNL_ARG_SRC, input}, {DNNL_ARG_DST, dst}};
    op.fixed = {{DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, memory(pd.bias_desc(), CpuEngine(), c.bias.data())}};
    return dst;
  };

  int previous = -1;  // the last stage's output on this level
  int64_t previous_offset = 0, previous_pixel = 0;  // where it is a channel range of an NHWC level
  for (const StageStep& s : graph.steps) {
    int src;
    if (s.stage == 0) {
      // The image, converted into the first convolution's layout and type: into the first 3
      // channels of a zeroed buffer where that convolution runs with more.
      const int64_t h = pyramid[s.level].size(2), w = pyramid[s.level].size(3), in = prepared_->first_in;
      const int input = plan->Add(Plan::Kind::kInput, s.level, memory::desc({n, 3, h, w}, kF32, Tag::nchw));
      const memory::desc want = ConvPd(n, in, prepared_->channels, h, w, prepared_->type).src_desc();
      src = plan->Add(in > 3 ? Plan::Kind::kZeroed : Plan::Kind::kTemp, -1, want);
      const int part = in > 3 ? plan->Add(Plan::Kind::kView, src, want.submemory_desc({n, 3, h, w}, {0, 0, 0, 0})) : src;
      dnnl::reorder::primitive_desc pd(CpuEngine(), plan->buffers[input].md, CpuEngine(), plan->buffers[part].md,
                                       Attr(false));
      plan->Push(dnnl::reorder(pd), pd).buffers = {{DNNL_ARG_FROM, input}, {DNNL_ARG_TO, part}};
    } else if (previous_pixel) {
      // 2x2 average pooling from the last stage's channels of its NHWC level.
      const memory::dims d = compat::DimsOf(plan->buffers[previous].md);
      src = plan->Add(Plan::Kind::kTemp, -1, memory::desc({d[0], d[1], d[2] / 2, d[3] / 2}, kF32, Tag::nhwc));
      plan->ops.push_back({});
      Plan::Op& op = plan->ops.back();
      op.buffers = {{DNNL_ARG_SRC, previous}, {DNNL_ARG_DST, src}};
      op.pool = true;
      op.offset = previous_offset;
      op.pixel = previous_pixel;
    } else {
      // 2x2 average pooling, stride 2, no padding: floor sizes, like avg_pool2d.
      const memory::desc& from = plan->buffers[previous].md;
      const memory::dims d = compat::DimsOf(from);
      const auto pd =
          compat::AvgPoolPd(CpuEngine(), from, Any(d[0], d[1], d[2] / 2, d[3] / 2, prepared_->type), 2, Attr(false));
      src = plan->Add(Plan::Kind::kTemp, -1, pd.dst_desc());
      plan->Push(dnnl::pooling_forward(pd), pd).buffers = {{DNNL_ARG_SRC, previous}, {DNNL_ARG_DST, src}};
    }
    const int out = conv(conv(src, s.stage, 0), s.stage, 1);

    // The concatenation: this stage's channels of its output level, in float32.
    const memory::dims d = compat::DimsOf(plan->buffers[out].md);
    const memory::desc range = outputs[s.output].submemory_desc(d, {0, s.channel_offset, 0, 0});
    Plan::Op& last = plan->ops.back();
    if (nhwc && last.winograd && out + 1 == static_cast<int>(plan->buffers.size())) {
      // NHWC: the last convolution writes its channels of the level itself, and the next stage
      // pools from there; its own output buffer is not needed.
      plan->buffers.pop_back();
      previous = plan->Add(Plan::Kind::kOutput, s.output, range);
      last.buffers[1].second = previous;
      last.offset = previous_offset = s.channel_offset;
      last.pixel = previous_pixel = graph.output_channels[s.output];
      continue;
    }
    previous_offset = previous_pixel = 0;
    const int dst = plan->Add(Plan::Kind::kOutput, s.output, range);
    dnnl::reorder::primitive_desc pd(CpuEngine(), plan->buffers[out].md, CpuEngine(), range, Attr(false));
    plan->Push(dnnl::reorder(pd), pd).buffers = {{DNNL_ARG_FROM, out}, {DNNL_ARG_TO, dst}};
    previous = out;
  }

  for (size_t i = 0; i < plan->ops.size(); ++i) {
    for (const auto& arg : plan->ops[i].buffers) {
      Plan::Buffer& b = plan->buffers[arg.second];
      b.last_use = i;
      if (b.kind == Plan::Kind::kView) plan->buffers[b.index].last_use = std::max(plan->buffers[b.index].last_use, i);
    }
  }

  std::lock_guard<std::mutex> lock(mutex_);
  plans_.emplace_back(key, std::move(plan));
  if (plans_.size() > kMaxPlans) plans_.pop_front();
  return plans_.back().second;
}

std::vector<Tensor> Engine::Run(const std::vector<Tensor>& pyramid, Layout layout) const {
  if (pyramid.empty()) throw std::invalid_argument("oneDNN engine: empty pyramid");
  std::shared_ptr<const Plan> plan = PlanFor(pyramid, layout);
  dnnl::engine& engine = CpuEngine();

  std::vector<Tensor> outputs;
  for (const auto& shape : plan->output_shapes) outputs.push_back(Tensor::Empty({shape.begin(), shape.end()}));
  Tensor scratch = Bytes(plan->scratchpad);
  const memory scratchpad(memory::desc({static_cast<int64_t>(scratch.numel())}, memory::data_type::u8, Tag::a), engine,
                          scratch.data());
  std::vector<Tensor> temps(plan->buffers.size());
  auto temp = [&](int b) {
    if (!temps[b].defined()) {
      const size_t size = std::max<size_t>(plan->buffers[b].md.get_size(), 1);
      temps[b] = plan->buffers[b].kind == Plan::Kind::kZeroed ? Tensor::Zeros({static_cast<int64_t>(size)}, DType::kUint8)
                                                               : Bytes(size);
    }
    return temps[b].data();
  };
  auto memory_of = [&](int b) {
    const Plan::Buffer& buffer = plan->buffers[b];
    switch (buffer.kind) {
      case Plan::Kind::kInput: return memory(buffer.md, engine, pyramid[buffer.index].data());
      case Plan::Kind::kOutput: return memory(buffer.md, engine, outputs[buffer.index].data());
      case Plan::Kind::kView: return memory(buffer.md, engine, temp(buffer.index));
      default: return memory(buffer.md, engine, temp(b));
    }
  };

  dnnl::stream stream(engine);
  for (size_t i = 0; i < plan->ops.size(); ++i) {
    const Plan::Op& op = plan->ops[i];
    if (op.winograd) {
      const memory from = memory_of(op.buffers[0].second), to = memory_of(op.buffers[1].second);
      op.winograd->Run(*op.winograd_plan, static_cast<const float*>(from.get_data_handle()),
                       static_cast<float*>(to.get_data_handle()) + op.offset, op.pixel);
    } else if (op.pool) {
      const memory from = memory_of(op.buffers[0].second), to = memory_of(op.buffers[1].second);
      const memory::dims d = compat::DimsOf(plan->buffers[op.buffers[0].second].md);
      PoolNhwc(static_cast<const float*>(from.get_data_handle()) + op.offset, op.pixel,
               static_cast<float*>(to.get_data_handle()), d[0], d[1], d[2], d[3]);
    } else {
      std::unordered_map<int, memory> args(op.fixed.begin(), op.fixed.end());
      for (const auto& arg : op.buffers) args.emplace(arg.first, memory_of(arg.second));
      args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad);
      op.primitive.execute(stream, args);
    }
    // Temporaries go back to the allocator as soon as nothing later reads them.
    for (const auto& arg : op.buffers) {
      if (plan->buffers[arg.second].last_use == i) temps[arg.second] = Tensor();
    }
  }
  stream.wait();
  return outputs;
}

}  // namespace onednn
}  // namespace film
