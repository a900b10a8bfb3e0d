#include "engine.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "compat.h"
#include "graph.h"

namespace film {
namespace onednn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr float kSlope = 0.2f;

dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
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

memory::desc Any(int64_t n, int64_t c, int64_t h, int64_t w) { return memory::desc({n, c, h, w}, kF32, Tag::any); }

dnnl::convolution_forward::primitive_desc ConvPd(const memory::desc& src, int64_t out, const memory::desc& weights) {
  const memory::dims d = compat::DimsOf(src);
  return compat::ConvPd(CpuEngine(), src, weights, memory::desc({out}, kF32, Tag::a), Any(d[0], out, d[2], d[3]),
                        /*pad=*/1, Attr(true));
}

memory::desc AnyWeights(int64_t out, int64_t in) { return memory::desc({out, in, 3, 3}, kF32, Tag::any); }

// Bytes as a uint8 tensor: from the CPU allocator libtorch uses (the addon's caching one).
at::Tensor Bytes(size_t size) { return at::empty({static_cast<int64_t>(std::max<size_t>(size, 1))}, at::kByte); }

// Copies a plain OIHW weight into the layout `md` describes.
at::Tensor ReorderWeights(const at::Tensor& oihw, const memory::desc& md) {
  at::Tensor out = Bytes(md.get_size());
  memory src(memory::desc(memory::dims(oihw.sizes().begin(), oihw.sizes().end()), kF32, Tag::oihw), CpuEngine(),
             oihw.data_ptr());
  memory dst(md, CpuEngine(), out.data_ptr());
  dnnl::stream stream(CpuEngine());
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  return out;
}

}  // namespace

// The weights, in the layout the convolutions chose for a typical frame.
struct Engine::Prepared {
  struct Conv {
    at::Tensor oihw;           // float32, contiguous: kept to reorder again if a size wants another layout
    at::Tensor bias;           // float32, contiguous
    memory::desc weights_md;   // the layout `weights` is in
    at::Tensor weights;        // bytes
  };
  std::vector<std::array<Conv, 2>> stages;
  int64_t channels = 0;
};

// Everything a run at one (batch, size, levels, threads) needs, made once: primitives, the memory
// descriptors of the buffers they pass along, and when each buffer is last used.
struct Engine::Plan {
  enum class Kind { kInput, kOutput, kTemp };
  struct Buffer {
    Kind kind;
    int index;          // pyramid level (input) or output level (output)
    memory::desc md;    // for an output: its channel range inside the NCHW level
    size_t last_use = 0;
  };
  struct Op {
    dnnl::primitive primitive;
    std::vector<std::pair<int, int>> buffers;   // (DNNL_ARG_*, buffer)
    std::vector<std::pair<int, memory>> fixed;  // weights and bias
  };
  std::vector<Buffer> buffers;
  std::vector<Op> ops;
  std::vector<std::array<int64_t, 4>> output_shapes;
  size_t scratchpad = 0;
  std::vector<at::Tensor> weights;  // any weights reordered for this plan alone

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

Engine::Engine(const std::vector<std::array<ConvWeights, 2>>& stages) : prepared_(new Prepared) {
  if (stages.empty()) throw std::invalid_argument("oneDNN engine: no stages");
  prepared_->channels = stages[0][0].weight.size(0);
  for (const auto& stage : stages) {
    std::array<Prepared::Conv, 2> convs;
    for (int k = 0; k < 2; ++k) {
      Prepared::Conv& c = convs[k];
      c.oihw = stage[k].weight.to(at::kFloat).contiguous();
      c.bias = stage[k].bias.to(at::kFloat).contiguous();
      const int64_t out = c.oihw.size(0), in = c.oihw.size(1);
      // The layout the convolution picks for a 64x64 frame; other sizes almost always pick the same.
      c.weights_md = ConvPd(Any(1, in, 64, 64), out, AnyWeights(out, in)).weights_desc();
      c.weights = ReorderWeights(c.oihw, c.weights_md);
    }
    prepared_->stages.push_back(std::move(convs));
  }
}

Engine::~Engine() = default;

std::string Engine::Isa() { return compat::IsaName(dnnl::get_effective_cpu_isa()); }

std::string Engine::Version() { return compat::RuntimeVersion(); }

std::shared_ptr<const Engine::Plan> Engine::PlanFor(const std::vector<at::Tensor>& pyramid) const {
  const at::Tensor& top = pyramid[0];
  const int64_t n = top.size(0), h0 = top.size(2), w0 = top.size(3);
  const Key key{n, h0, w0, pyramid.size(), at::get_num_threads()};
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
  for (int o = 0; o < levels; ++o) {
    const std::array<int64_t, 4> shape{n, graph.output_channels[o], h0 >> o, w0 >> o};
    plan->output_shapes.push_back(shape);
    outputs.emplace_back(memory::dims(shape.begin(), shape.end()), kF32, Tag::nchw);
  }

  // Convolution k of stage j on `src`; returns its output buffer.
  auto conv = [&](int src, int j, int k) {
    const Prepared::Conv& c = prepared_->stages[j][k];
    const int64_t out = c.oihw.size(0), in = c.oihw.size(1);
    const memory::dims d = compat::DimsOf(plan->buffers[src].md);
    auto pd = ConvPd(Any(d[0], in, d[2], d[3]), out, AnyWeights(out, in));
    memory weights(c.weights_md, CpuEngine(), c.weights.data_ptr());
    if (pd.weights_desc() != c.weights_md) {
      plan->weights.push_back(ReorderWeights(c.oihw, pd.weights_desc()));
      weights = memory(pd.weights_desc(), CpuEngine(), plan->weights.back().data_ptr());
    }
    const int input = plan->As(src, pd.src_desc());
    const int dst = plan->Add(Plan::Kind::kTemp, -1, pd.dst_desc());
    Plan::Op& op = plan->Push(dnnl::convolution_forward(pd), pd);
    op.buffers = {{DNNL_ARG_SRC, input}, {DNNL_ARG_DST, dst}};
    op.fixed = {{DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, memory(pd.bias_desc(), CpuEngine(), c.bias.data_ptr())}};
    return dst;
  };

  int previous = -1;  // the last stage's output on this level
  for (const StageStep& s : graph.steps) {
    int src;
    if (s.stage == 0) {
      const at::Tensor& level = pyramid[s.level];
      src = plan->Add(Plan::Kind::kInput, s.level,
                      memory::desc({n, 3, level.size(2), level.size(3)}, kF32, Tag::nchw));
    } else {
      // 2x2 average pooling, stride 2, no padding: floor sizes, like avg_pool2d.
      const memory::desc& from = plan->buffers[previous].md;
      const memory::dims d = compat::DimsOf(from);
      const auto pd = compat::AvgPoolPd(CpuEngine(), from, Any(d[0], d[1], d[2] / 2, d[3] / 2), 2, Attr(false));
      src = plan->Add(Plan::Kind::kTemp, -1, pd.dst_desc());
      plan->Push(dnnl::pooling_forward(pd), pd).buffers = {{DNNL_ARG_SRC, previous}, {DNNL_ARG_DST, src}};
    }
    const int out = conv(conv(src, s.stage, 0), s.stage, 1);

    // The concatenation: this stage's channels of its output level, in NCHW.
    const memory::dims d = compat::DimsOf(plan->buffers[out].md);
    const memory::desc range = outputs[s.output].submemory_desc(d, {0, s.channel_offset, 0, 0});
    const int dst = plan->Add(Plan::Kind::kOutput, s.output, range);
    dnnl::reorder::primitive_desc pd(CpuEngine(), plan->buffers[out].md, CpuEngine(), range, Attr(false));
    plan->Push(dnnl::reorder(pd), pd).buffers = {{DNNL_ARG_FROM, out}, {DNNL_ARG_TO, dst}};
    previous = out;
  }

  for (size_t i = 0; i < plan->ops.size(); ++i) {
    for (const auto& arg : plan->ops[i].buffers) plan->buffers[arg.second].last_use = i;
  }

  std::lock_guard<std::mutex> lock(mutex_);
  plans_.emplace_back(key, std::move(plan));
  if (plans_.size() > kMaxPlans) plans_.pop_front();
  return plans_.back().second;
}

std::vector<at::Tensor> Engine::Run(const std::vector<at::Tensor>& pyramid) const {
  if (pyramid.empty()) throw std::invalid_argument("oneDNN engine: empty pyramid");
  std::shared_ptr<const Plan> plan = PlanFor(pyramid);
  dnnl::engine& engine = CpuEngine();

  std::vector<at::Tensor> outputs;
  for (const auto& shape : plan->output_shapes) outputs.push_back(at::empty(shape, at::kFloat));
  at::Tensor scratch = Bytes(plan->scratchpad);
  const memory scratchpad(memory::desc({static_cast<int64_t>(scratch.numel())}, memory::data_type::u8, Tag::a), engine,
                          scratch.data_ptr());
  std::vector<at::Tensor> temps(plan->buffers.size());
  auto memory_of = [&](int b) {
    const Plan::Buffer& buffer = plan->buffers[b];
    switch (buffer.kind) {
      case Plan::Kind::kInput: return memory(buffer.md, engine, pyramid[buffer.index].data_ptr());
      case Plan::Kind::kOutput: return memory(buffer.md, engine, outputs[buffer.index].data_ptr());
      case Plan::Kind::kTemp:
      default:
        if (!temps[b].defined()) temps[b] = Bytes(buffer.md.get_size());
        return memory(buffer.md, engine, temps[b].data_ptr());
    }
  };

  dnnl::stream stream(engine);
  for (size_t i = 0; i < plan->ops.size(); ++i) {
    const Plan::Op& op = plan->ops[i];
    std::unordered_map<int, memory> args(op.fixed.begin(), op.fixed.end());
    for (const auto& arg : op.buffers) args.emplace(arg.first, memory_of(arg.second));
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad);
    op.primitive.execute(stream, args);
    // Temporaries go back to the allocator as soon as nothing later reads them.
    for (const auto& arg : op.buffers) {
      if (plan->buffers[arg.second].last_use == i) temps[arg.second] = at::Tensor();
    }
  }
  stream.wait();
  return outputs;
}

}  // namespace onednn
}  // namespace film
