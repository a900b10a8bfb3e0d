#include "extractor.h"

#include <optional>
#include <utility>
#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "frame_run.h"
#include "idle_release.h"
#include "promise_task.h"
#include "tensor_io.h"

namespace film {
namespace {

// run() flags
constexpr uint32_t kCopyOutputs = 1;    // copy outputs into V8-owned buffers (Electron's path)
constexpr uint32_t kWithAddresses = 2;  // test hook: add each output tensor's address

class LoadTask : public Task {
 public:
  LoadTask(Napi::Env env, LoadOptions options) : Task(env, 1), options_(std::move(options)) {}

 protected:
  void Run(int /*threads*/) override {
    try {
      model_ = Model::Load(options_);
    } catch (const UserError& e) {
      // Model::Load's own plain errors are all about what the file holds.
      if (e.kind() == ErrorKind::kError && std::string(e.code()) == code::kRuntime) {
        throw UserError(ErrorKind::kError, e.what(), code::kModelFormat);
      }
      throw;
    }
  }

  Napi::Value Result(Napi::Env env) override {
    // The extractor's constructor moves the model out of the External: nothing else keeps it.
    auto* handoff = new std::shared_ptr<Model>(std::move(model_));
    auto external = Napi::External<std::shared_ptr<Model>>::New(env, handoff,
                                                                 [](Napi::Env, std::shared_ptr<Model>* p) { delete p; });
    return AddonData::From(env)->extractor_constructor.New({external});
  }

 private:
  LoadOptions options_;
  std::shared_ptr<Model> model_;
};

class RunTask : public Task {
 public:
  RunTask(Napi::Env env, std::shared_ptr<ModelSlot> slot, std::vector<HostInput> inputs, size_t levels, int threads,
          uint32_t flags, std::optional<FramePlan> plan)
      : Task(env, threads),
        slot_(std::move(slot)),
        inputs_(std::move(inputs)),
        levels_(levels),
        threads_(threads),
        flags_(flags),
        plan_(std::move(plan)) {}

 protected:
  void Run(int threads) override {
    std::shared_ptr<Model> model = slot_->Get();
    if (!model) throw UserError(ErrorKind::kError, "This FeatureExtractor has been disposed", code::kDisposed);
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
    features_ = model->Run(pyramid, levels_, threads);
  }

  Napi::Value Result(Napi::Env env) override {
    return ToOutputs(env, features_, flags_ & kCopyOutputs, flags_ & kWithAddresses);
  }

 private:
  std::shared_ptr<ModelSlot> slot_;
  std::vector<HostInput> inputs_;
  size_t levels_;
  int threads_;
  uint32_t flags_;
  std::optional<FramePlan> plan_;
  std::vector<at::Tensor> features_;
};

double OptionalNumber(const Napi::CallbackInfo& info, size_t i, double fallback) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : fallback;
}

}  // namespace

Napi::Function Extractor::Define(Napi::Env env) {
  return DefineClass(env, "NativeExtractor",
                     {InstanceMethod<&Extractor::Run>("run"), InstanceMethod<&Extractor::Dispose>("dispose"),
                      InstanceAccessor<&Extractor::Device>("device"), InstanceAccessor<&Extractor::Info>("info")});
}

Extractor::Extractor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Extractor>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(env, "NativeExtractor is made by load(), not constructed");
  }
  std::shared_ptr<Model> model = std::move(*info[0].As<Napi::External<std::shared_ptr<Model>>>().Data());
  if (!model) throw Napi::TypeError::New(env, "NativeExtractor is made by load(), not constructed");
  device_ = model->device_name();
  info_ = model->info();
  // When the last holder lets go (dispose(), or the last run in flight after it), the model is
  // destroyed, and freed memory is handed back to the system once nothing runs (idle_release.h).
  auto* owner = new std::shared_ptr<Model>(std::move(model));
  std::shared_ptr<Model> tracked(owner->get(), [owner](Model*) {
    delete owner;
    ReleaseWhenIdle();
  });
  slot_ = std::make_shared<ModelSlot>(std::move(tracked));
}

Napi::Value Extractor::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber() ||
                           !info[3].IsBoolean(),
                       "load(path: string, device: string, threads: number, half: boolean, engine?: string, "
                       "precision?: string)");
    FILM_TYPE_ERROR_IF(info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsString(), "engine must be a string");
    FILM_TYPE_ERROR_IF(info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsString(),
                       "precision must be a string");
    LoadOptions options;
    options.path = info[0].As<Napi::String>();
    if (options.path.find('\0') != std::string::npos) {
      throw UserError(ErrorKind::kTypeError, "The model path must be a string without null bytes",
                      code::kInvalidArgValue);
    }
    options.device = info[1].As<Napi::String>();
    options.threads = info[2].As<Napi::Number>().Int32Value();
    options.half = info[3].As<Napi::Boolean>();
    if (info.Length() > 4 && info[4].IsString()) options.engine = info[4].As<Napi::String>();
    if (info.Length() > 5 && info[5].IsString()) options.precision = info[5].As<Napi::String>();
    return Task::Submit(env, std::make_shared<LoadTask>(env, std::move(options)));
  });
}

Napi::Value Extractor::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    std::shared_ptr<Model> model = slot_ ? slot_->Get() : nullptr;
    if (!model) throw UserError(ErrorKind::kError, "This FeatureExtractor has been disposed", code::kDisposed);
    FILM_TYPE_ERROR_IF(info.Length() < 1 || !info[0].IsArray(),
                       "run(inputs: {data, shape}[], levels?: number, threads?: number, flags?: number, plan?: object)");
    Napi::Array list = info[0].As<Napi::Array>();
    const uint32_t count = list.Length();
    FILM_RANGE_ERROR_IF(count == 0, "Expected at least one level in pyramid");
    const double levels = OptionalNumber(info, 1, count);
    FILM_RANGE_ERROR_IF(!(levels >= count && levels <= 32 && levels == static_cast<int>(levels)),
                        "Expected an integer levels >= the pyramid's length, at most 32");
    const double threads = OptionalNumber(info, 2, 0);
    FILM_RANGE_ERROR_IF(!(threads >= 0 && threads <= 1024 && threads == static_cast<int>(threads)),
                        "Expected an integer threads from 0 to 1024");
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
      plan = ReadFramePlan(info[4], h, w);
    } else {
      const int64_t extra = static_cast<int64_t>(levels) - count;
      FILM_RANGE_ERROR_IF(extra >= 31 || (h >> extra) < 1 || (w >> extra) < 1,
                          "the coarsest level is too small to pool " + std::to_string(extra) + " more levels from");
    }
    FILM_RANGE_ERROR_IF(count > 1 && inputs[0].interleaved, "an 8-bit image must come alone, its pyramid built natively");
    // 0: every core (the executor's grant decides); a CUDA run needs one host thread.
    const int want = model->device().is_cpu() ? (threads > 0 ? static_cast<int>(threads) : model->threads()) : 1;
    model.reset();
    auto task = std::make_shared<RunTask>(env, slot_, std::move(inputs), static_cast<size_t>(levels), want, flags,
                                           std::move(plan));
    Napi::Object job = Napi::Object::New(env);
    job.Set("promise", Task::Submit(env, task));
    std::weak_ptr<Task> weak = task;
    job.Set("cancel", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) {
      if (auto t = weak.lock()) t->Cancel();
      return call.Env().Undefined();
    }, "cancel"));
    return job;
  });
}

Napi::Value Extractor::Dispose(const Napi::CallbackInfo& info) {
  if (slot_) slot_->Reset();
  return info.Env().Undefined();
}

Napi::Value Extractor::Device(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return slot_ && slot_->Get() ? Napi::String::New(env, device_) : env.Null();
}

Napi::Value Extractor::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!slot_ || !slot_->Get()) return env.Null();
  const ModelInfo& m = info_;
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
