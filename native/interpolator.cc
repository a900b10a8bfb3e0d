#include "interpolator.h"

#include <utility>
#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "idle_release.h"
#include "promise_task.h"
#include "tensor_io.h"

namespace film {
namespace {

// run() flags
constexpr uint32_t kCopyOutputs = 1;    // copy outputs into V8-owned buffers (Electron's path)
constexpr uint32_t kWithAddresses = 2;  // test hook: add each output tensor's address
constexpr uint32_t kBytes = 4;          // frames as uint8 [n, h, w, 3] instead of float32 [n, 3, h, w]

const char* const kDisposedMessage = "This Interpolator has been disposed";

class LoadTask : public Task {
 public:
  LoadTask(Napi::Env env, LoadOptions options) : Task(env, 1), options_(std::move(options)) {}

 protected:
  void Run(int /*threads*/) override {
    try {
      model_ = InterpolatorModel::Load(options_);
    } catch (const UserError& e) {
      // InterpolatorModel::Load's own plain errors are all about what the file holds.
      if (e.kind() == ErrorKind::kError && std::string(e.code()) == code::kRuntime) {
        throw UserError(ErrorKind::kError, e.what(), code::kModelFormat);
      }
      throw;
    }
  }

  Napi::Value Result(Napi::Env env) override {
    auto* handoff = new std::shared_ptr<InterpolatorModel>(std::move(model_));
    auto external = Napi::External<std::shared_ptr<InterpolatorModel>>::New(
        env, handoff, [](Napi::Env, std::shared_ptr<InterpolatorModel>* p) { delete p; });
    return AddonData::From(env)->interpolator_constructor.New({external});
  }

 private:
  LoadOptions options_;
  std::shared_ptr<InterpolatorModel> model_;
};

class RunTask : public Task {
 public:
  RunTask(Napi::Env env, std::shared_ptr<Slot<InterpolatorModel>> slot, std::vector<HostInput> a,
          std::vector<HostInput> b, std::vector<double> times, int recursions, int threads, uint32_t flags)
      : Task(env, threads),
        slot_(std::move(slot)),
        a_(std::move(a)),
        b_(std::move(b)),
        times_(std::move(times)),
        recursions_(recursions),
        flags_(flags) {}

 protected:
  void Run(int threads) override {
    std::shared_ptr<InterpolatorModel> model = slot_->Get();
    if (!model) throw UserError(ErrorKind::kError, kDisposedMessage, code::kDisposed);
    const at::Tensor x0 = Stack(&a_), x1 = Stack(&b_);
    frames_ = model->Run(x0, x1, times_, recursions_, flags_ & kBytes, threads);
  }

  Napi::Value Result(Napi::Env env) override {
    return ToOutputs(env, frames_, flags_ & kCopyOutputs, flags_ & kWithAddresses);
  }

 private:
  // One batch from the inputs (float32 NCHW each, 8-bit ones converted as the extractor does).
  static at::Tensor Stack(std::vector<HostInput>* inputs) {
    std::vector<at::Tensor> tensors;
    for (const HostInput& input : *inputs) tensors.push_back(InputTensor(input));
    inputs->clear();
    return tensors.size() == 1 ? tensors[0] : at::cat(tensors, 0);
  }

  std::shared_ptr<Slot<InterpolatorModel>> slot_;
  std::vector<HostInput> a_, b_;
  std::vector<double> times_;
  int recursions_;
  uint32_t flags_;
  std::vector<at::Tensor> frames_;
};

double OptionalNumber(const Napi::CallbackInfo& info, size_t i, double fallback) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : fallback;
}

// [h, w] of an input as ReadInput stored it.
std::pair<int64_t, int64_t> Size(const HostInput& input) {
  const at::Tensor& p = input.pixels;
  return input.interleaved ? std::make_pair(p.size(1), p.size(2)) : std::make_pair(p.size(2), p.size(3));
}

std::vector<HostInput> ReadList(const Napi::Value& value, const char* name) {
  FILM_TYPE_ERROR_IF(!value.IsArray(), std::string("Expected an array of inputs for ") + name);
  Napi::Array list = value.As<Napi::Array>();
  FILM_RANGE_ERROR_IF(list.Length() == 0, std::string("Expected at least one input in ") + name);
  std::vector<HostInput> inputs;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    inputs.push_back(ReadInput(list.Get(i), list.Length() == 1 ? name : std::string(name) + "[" + std::to_string(i) + "]"));
    FILM_RANGE_ERROR_IF(Size(inputs[i]) != Size(inputs[0]), std::string(name) + "[" + std::to_string(i) +
                                                                 "] is not the size of " + name + "[0]");
  }
  return inputs;
}

int64_t Count(const std::vector<HostInput>& inputs) {
  int64_t n = 0;
  for (const HostInput& input : inputs) n += input.pixels.size(0);
  return n;
}

}  // namespace

Napi::Function Interpolator::Define(Napi::Env env) {
  return DefineClass(env, "NativeInterpolator",
                     {InstanceMethod<&Interpolator::Run>("run"), InstanceMethod<&Interpolator::Dispose>("dispose"),
                      InstanceAccessor<&Interpolator::Device>("device"),
                      InstanceAccessor<&Interpolator::Info>("info")});
}

Interpolator::Interpolator(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Interpolator>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(env, "NativeInterpolator is made by loadInterpolator(), not constructed");
  }
  std::shared_ptr<InterpolatorModel> model =
      std::move(*info[0].As<Napi::External<std::shared_ptr<InterpolatorModel>>>().Data());
  if (!model) throw Napi::TypeError::New(env, "NativeInterpolator is made by loadInterpolator(), not constructed");
  device_ = model->device_name();
  info_ = model->info();
  // As the extractor's: freed memory goes back to the system once nothing runs (idle_release.h).
  auto* owner = new std::shared_ptr<InterpolatorModel>(std::move(model));
  std::shared_ptr<InterpolatorModel> tracked(owner->get(), [owner](InterpolatorModel*) {
    delete owner;
    ReleaseWhenIdle();
  });
  slot_ = std::make_shared<Slot<InterpolatorModel>>(std::move(tracked));
}

Napi::Value Interpolator::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber() ||
                           !info[3].IsBoolean(),
                       "loadInterpolator(path: string, device: string, threads: number, half: boolean)");
    LoadOptions options;
    options.path = info[0].As<Napi::String>();
    if (options.path.find('\0') != std::string::npos) {
      throw UserError(ErrorKind::kTypeError, "The model path must be a string without null bytes",
                      code::kInvalidArgValue);
    }
    options.device = info[1].As<Napi::String>();
    options.threads = info[2].As<Napi::Number>().Int32Value();
    options.half = info[3].As<Napi::Boolean>();
    return Task::Submit(env, std::make_shared<LoadTask>(env, std::move(options)));
  });
}

Napi::Value Interpolator::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    std::shared_ptr<InterpolatorModel> model = slot_ ? slot_->Get() : nullptr;
    if (!model) throw UserError(ErrorKind::kError, kDisposedMessage, code::kDisposed);
    FILM_TYPE_ERROR_IF(info.Length() < 4 || !info[2].IsArray() || !info[3].IsNumber(),
                       "run(a: input[], b: input[], times: number[], recursions: number, threads?: number, "
                       "flags?: number)");
    std::vector<HostInput> a = ReadList(info[0], "a");
    std::vector<HostInput> b = ReadList(info[1], "b");
    FILM_RANGE_ERROR_IF(Size(a[0]) != Size(b[0]), "a and b must be frames of one size: a is " +
                                                      std::to_string(Size(a[0]).second) + "x" +
                                                      std::to_string(Size(a[0]).first) + ", b is " +
                                                      std::to_string(Size(b[0]).second) + "x" +
                                                      std::to_string(Size(b[0]).first));
    FILM_RANGE_ERROR_IF(Count(a) != Count(b), "a has " + std::to_string(Count(a)) + " frames but b has " +
                                                  std::to_string(Count(b)));
    Napi::Array list = info[2].As<Napi::Array>();
    std::vector<double> times;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value t = list.Get(i);
      FILM_TYPE_ERROR_IF(!t.IsNumber(), "Expected numbers in times");
      const double v = t.As<Napi::Number>().DoubleValue();
      FILM_RANGE_ERROR_IF(!(v >= 0 && v <= 1), "Expected times between 0 and 1");
      times.push_back(v);
    }
    const double recursions = info[3].As<Napi::Number>().DoubleValue();
    FILM_RANGE_ERROR_IF(!(recursions >= 0 && recursions <= 16 && recursions == static_cast<int>(recursions)),
                        "Expected an integer recursions from 0 to 16");
    FILM_RANGE_ERROR_IF(recursions == 0 && times.empty(), "Expected at least one time, or recursions > 0");
    const double threads = OptionalNumber(info, 4, 0);
    FILM_RANGE_ERROR_IF(!(threads >= 0 && threads <= 1024 && threads == static_cast<int>(threads)),
                        "Expected an integer threads from 0 to 1024");
    const uint32_t flags = static_cast<uint32_t>(OptionalNumber(info, 5, 0));
    const int want = model->device().is_cpu() ? (threads > 0 ? static_cast<int>(threads) : model->threads()) : 1;
    model.reset();
    auto task = std::make_shared<RunTask>(env, slot_, std::move(a), std::move(b), std::move(times),
                                          static_cast<int>(recursions), want, flags);
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

Napi::Value Interpolator::Dispose(const Napi::CallbackInfo& info) {
  if (slot_) slot_->Reset();
  return info.Env().Undefined();
}

Napi::Value Interpolator::Device(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return slot_ && slot_->Get() ? Napi::String::New(env, device_) : env.Null();
}

Napi::Value Interpolator::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!slot_ || !slot_->Get()) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("dtype", info_.dtype);
  out.Set("optimized", info_.optimized);
  out.Set("dtShape", DtShapeName(info_.dt_rank));
  return out;
}

}  // namespace film
