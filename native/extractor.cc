#include "extractor.h"

#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "errors.h"
#include "frame_run.h"
#include "file_writer.h"
#include "promise_task.h"
#include "tensor_io.h"

namespace film {
namespace {

class RunTask : public Task {
 public:
  RunTask(Napi::Env env, std::shared_ptr<Slot<Model>> slot, std::vector<HostInput> inputs, size_t levels, int threads,
          uint32_t flags, std::optional<FramePlan> plan)
      : Task(env, threads),
        slot_(std::move(slot)),
        inputs_(std::move(inputs)),
        levels_(levels),
        flags_(flags),
        plan_(std::move(plan)) {}

 protected:
  void Run(int threads) override {
    std::shared_ptr<Model> model = slot_->Get();
    if (!model) throw UserError(ErrorKind::kError, Extractor::kDisposed, code::kDisposed);
    if (plan_) {
      features_ = RunFrame(*model, inputs_[0], *plan_, threads);
      inputs_.clear();
      return;
    }
    std::vector<Tensor> pyramid;
    pyramid.reserve(inputs_.size());
    for (const HostInput& input : inputs_) pyramid.push_back(InputTensor(input));
    inputs_.clear();
    // On the CPU the pyramid is built here, exactly as buildPyramid does; an accelerator pools it
    // on the device from level 0 (Model::Run), sending a quarter fewer bytes.
    if (model->is_cpu() && pyramid.size() == 1 && levels_ > 1) pyramid = CpuPyramid(pyramid[0], levels_);
    features_ = model->Run(pyramid, levels_, threads, flags_ & run_flag::kNhwcOutputs);
  }

  Napi::Value Result(Napi::Env env) override {
    if (flags_ & run_flag::kHoldOutputs) return ToHeldLevels(env, features_);
    return ToOutputs(env, features_, flags_ & run_flag::kCopyOutputs, flags_ & run_flag::kWithAddresses);
  }

 private:
  std::shared_ptr<Slot<Model>> slot_;
  std::vector<HostInput> inputs_;
  size_t levels_;
  uint32_t flags_;
  std::optional<FramePlan> plan_;
  std::vector<Tensor> features_;
};

}  // namespace

namespace {

std::string StringField(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  FILM_TYPE_ERROR_IF(!v.IsString(), std::string("invalid binding input weights.") + name + ": not a string");
  return v.As<Napi::String>();
}

// A float32 tensor of `shape`, copied now (on the JS thread) from a Float32Array of exactly its size.
Tensor CopyFloats(const Napi::Value& value, std::vector<int64_t> shape, const std::string& name) {
  FILM_TYPE_ERROR_IF(!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array,
                     "invalid binding input " + name + ": not a Float32Array");
  Napi::Float32Array array = value.As<Napi::Float32Array>();
  Tensor t = Tensor::Empty(std::move(shape));
  FILM_RANGE_ERROR_IF(static_cast<int64_t>(array.ElementLength()) != t.numel(),
                      "invalid binding input " + name + ": " + std::to_string(array.ElementLength()) +
                          " floats where its shape " + t.ShapeString() + " needs " + std::to_string(t.numel()));
  if (t.nbytes()) std::memcpy(t.data(), array.Data(), t.nbytes());
  return t;
}

// {source, format, dtype, origin, channels, stages: [{weight, bias}, {weight, bias}][]}: FILM's
// extractor as lib/model-file read and checked it; here only what keeps the copies in bounds.
ExtractorWeights ReadWeights(const Napi::Value& value) {
  FILM_TYPE_ERROR_IF(!value.IsObject(), "invalid binding input weights: not an object");
  Napi::Object o = value.As<Napi::Object>();
  ExtractorWeights w;
  w.source = StringField(o, "source");
  w.format = StringField(o, "format");
  w.dtype = StringField(o, "dtype");
  w.origin = StringField(o, "origin");
  Napi::Value channels = o.Get("channels");
  FILM_TYPE_ERROR_IF(!channels.IsNumber(), "invalid binding input weights.channels: not a number");
  const double c = channels.As<Napi::Number>().DoubleValue();
  FILM_RANGE_ERROR_IF(!(c >= 1 && c <= 4096 && c == static_cast<int64_t>(c)), "invalid binding input weights.channels");
  w.channels = static_cast<int64_t>(c);
  Napi::Value stages = o.Get("stages");
  FILM_TYPE_ERROR_IF(!stages.IsArray(), "invalid binding input weights.stages: not an array");
  Napi::Array list = stages.As<Napi::Array>();
  FILM_RANGE_ERROR_IF(list.Length() < 1 || list.Length() > 8 || (w.channels << (list.Length() - 1)) > 65536,
                      "invalid binding input weights.stages: 1 to 8 stages");
  for (uint32_t j = 0; j < list.Length(); ++j) {
    const std::string name = "weights.stages[" + std::to_string(j) + "]";
    Napi::Value stage = list.Get(j);
    FILM_TYPE_ERROR_IF(!stage.IsArray() || stage.As<Napi::Array>().Length() != 2,
                       "invalid binding input " + name + ": not two convolutions");
    const int64_t width = w.channels << j;
    std::array<ConvWeights, 2> convs;
    for (uint32_t k = 0; k < 2; ++k) {
      Napi::Value conv = stage.As<Napi::Array>().Get(k);
      const std::string at = name + "[" + std::to_string(k) + "]";
      FILM_TYPE_ERROR_IF(!conv.IsObject(), "invalid binding input " + at + ": not {weight, bias}");
      const int64_t in = k == 1 ? width : (j == 0 ? 3 : width / 2);
      convs[k].weight = CopyFloats(conv.As<Napi::Object>().Get("weight"), {width, in, 3, 3}, at + ".weight");
      convs[k].bias = CopyFloats(conv.As<Napi::Object>().Get("bias"), {width}, at + ".bias");
    }
    w.stages.push_back(std::move(convs));
  }
  return w;
}

}  // namespace

void Extractor::ReadMoreLoadOptions(const Napi::CallbackInfo& info, LoadOptions* options) {
  FILM_TYPE_ERROR_IF(info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsString(), "engine must be a string");
  FILM_TYPE_ERROR_IF(info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsString(), "precision must be a string");
  if (info.Length() > 4 && info[4].IsString()) options->engine = info[4].As<Napi::String>();
  if (info.Length() > 5 && info[5].IsString()) options->precision = info[5].As<Napi::String>();
  FILM_TYPE_ERROR_IF(info.Length() < 7, "load(path, device, threads, half, engine, precision, weights)");
  options->weights = ReadWeights(info[6]);
}

Napi::Value Extractor::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    std::shared_ptr<Model> model = Live();
    FILM_TYPE_ERROR_IF(info.Length() < 1 || !info[0].IsArray(),
                       "run(inputs: {data, shape}[], levels?: number, threads?: number, flags?: number, plan?: object)");
    Napi::Array list = info[0].As<Napi::Array>();
    const uint32_t count = list.Length();
    FILM_RANGE_ERROR_IF(count == 0, "Expected at least one level in pyramid");
    const double levels = OptionalNumber(info, 1, count);
    FILM_RANGE_ERROR_IF(!(levels >= count && levels <= 32 && levels == static_cast<int>(levels)),
                        "Expected an integer levels >= the pyramid's length, at most 32");
    const int want = WantThreads(*model, OptionalNumber(info, 2, 0));
    const uint32_t flags = static_cast<uint32_t>(OptionalNumber(info, 3, 0));
    std::vector<HostInput> inputs;
    inputs.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      inputs.push_back(ReadInput(list.Get(i), count == 1 ? "image" : "pyramid[" + std::to_string(i) + "]"));
      FILM_RANGE_ERROR_IF(i > 0 && inputs[i].interleaved, "pyramid levels past the first must be Float32Arrays");
    }
    const HostInput& last = inputs.back();
    const int64_t h = last.interleaved ? last.pixels.size(1) : last.pixels.size(2);
    const int64_t w = last.interleaved ? last.pixels.size(2) : last.pixels.size(3);
    // A frame plan (frame_run.h) pads the image and says which levels run: it is checked instead.
    std::optional<FramePlan> plan;
    if (info.Length() > 4 && !info[4].IsUndefined()) {
      FILM_RANGE_ERROR_IF(count != 1, "a frame plan takes one image");
      FILM_RANGE_ERROR_IF(flags & run_flag::kNhwcOutputs, "a frame plan's levels are NCHW");
      plan = ReadFramePlan(info[4], h, w);
    } else {
      const int64_t extra = static_cast<int64_t>(levels) - count;
      FILM_RANGE_ERROR_IF(extra >= 31 || (h >> extra) < 1 || (w >> extra) < 1,
                          "the coarsest level is too small to pool " + std::to_string(extra) + " more levels from");
    }
    FILM_RANGE_ERROR_IF(count > 1 && inputs[0].interleaved, "an 8-bit image must come alone, its pyramid built natively");
    FILM_RANGE_ERROR_IF((flags & run_flag::kHoldOutputs) && (flags & run_flag::kNhwcOutputs),
                        "held levels are written as NCHW");
    model.reset();
    return Submit(env, std::make_shared<RunTask>(env, slot_, std::move(inputs), static_cast<size_t>(levels), want, flags,
                                                 std::move(plan)));
  });
}

Napi::Value Extractor::InfoOf(Napi::Env env, const ModelInfo& m) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("source", m.source);
  out.Set("format", m.format);
  out.Set("codeRun", m.code_run);
  out.Set("channels", Napi::Number::New(env, static_cast<double>(m.channels)));
  out.Set("subLevels", Napi::Number::New(env, static_cast<double>(m.sub_levels)));
  out.Set("dtype", m.dtype);
  out.Set("optimized", m.optimized);
  out.Set("engine", m.engine);
  out.Set("precision", m.precision);
  if (!m.isa.empty()) out.Set("isa", m.isa);
  if (!m.onednn.empty()) out.Set("onednn", m.onednn);
  out.Set("weights", m.weights);
  return out;
}

}  // namespace film
