#include "extractor.h"

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
    std::vector<at::Tensor> pyramid;
    pyramid.reserve(inputs_.size());
    for (const HostInput& input : inputs_) pyramid.push_back(InputTensor(input));
    inputs_.clear();
    // On the CPU the pyramid is built here, exactly as buildPyramid does; an accelerator pools it
    // on the device from level 0 (Model::Run), sending a quarter fewer bytes.
    if (model->device().is_cpu() && pyramid.size() == 1 && levels_ > 1) pyramid = CpuPyramid(pyramid[0], levels_);
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
  std::vector<at::Tensor> features_;
};

}  // namespace

void Extractor::ReadMoreLoadOptions(const Napi::CallbackInfo& info, LoadOptions* options) {
  FILM_TYPE_ERROR_IF(info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsString(), "engine must be a string");
  FILM_TYPE_ERROR_IF(info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsString(), "precision must be a string");
  if (info.Length() > 4 && info[4].IsString()) options->engine = info[4].As<Napi::String>();
  if (info.Length() > 5 && info[5].IsString()) options->precision = info[5].As<Napi::String>();
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
