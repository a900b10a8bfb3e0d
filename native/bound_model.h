// What every JS-facing model class shares (NativeExtractor, NativeInterpolator): load() as a Task,
// the construction from load()'s handoff, the slot that dispose() empties, device and info, and
// each run's {promise, cancel} job. D is the class (CRTP), M its loaded model (Model,
// InterpolatorModel). D provides:
//   static constexpr const char* kName, kDisposed;    // "NativeExtractor", its disposed message
//   static Napi::FunctionReference& Constructor(AddonData*);
//   static void ReadMoreLoadOptions(const Napi::CallbackInfo&, LoadOptions*);  // optional: past the first 4
//   Napi::Value Run(const Napi::CallbackInfo&);
//   static Napi::Value InfoOf(Napi::Env, const ModelInfo or InterpolatorInfo&);  // M::info()
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "idle_release.h"
#include "model.h"
#include "model_slot.h"
#include "promise_task.h"
#include "tagged_external.h"

namespace film {

// run() flags every model class takes
namespace run_flag {
constexpr uint32_t kCopyOutputs = 1;    // copy outputs into V8-owned buffers (Electron's path)
constexpr uint32_t kWithAddresses = 2;  // tests only (binding._internal): add each output tensor's address
constexpr uint32_t kHoldOutputs = 8;    // the extractor's: outputs held natively for writeFiles (file_writer.h)
constexpr uint32_t kNhwcOutputs = 16;   // the extractor's: levels [N, H, W, C] instead of [N, C, H, W]
}  // namespace run_flag

template <typename D, typename M>
class BoundModel : public Napi::ObjectWrap<D> {
 public:
  using Wrap = Napi::ObjectWrap<D>;

  // The class with run(), dispose() and the device and info accessors. They are the prototype's
  // plain functions, each checking its receiver's tag before the cast (Self()): ObjectWrap's own
  // would unwrap an instance of the other class as this one.
  static Napi::Function Define(Napi::Env env) {
    Napi::Function cls = Wrap::DefineClass(env, D::kName, std::vector<typename Wrap::PropertyDescriptor>{});
    Napi::Object prototype = cls.Get("prototype").template As<Napi::Object>();
    prototype.DefineProperties({
        Napi::PropertyDescriptor::Function(env, prototype, "run", Call<&D::Run>),
        Napi::PropertyDescriptor::Function(env, prototype, "dispose", Call<&BoundModel::Dispose>),
        Napi::PropertyDescriptor::Accessor<Call<&BoundModel::Device>>("device"),
        Napi::PropertyDescriptor::Accessor<Call<&BoundModel::Info>>("info"),
    });
    return cls;
  }

  // The instance value is, or a TypeError: an object this class constructed, by its tag.
  static D* Self(const Napi::Value& value) {
    const std::string expected = std::string("Expected a ") + D::kName;
    FILM_TYPE_ERROR_IF(!value.IsObject() || !HasTypeTag(value, InstanceTag()), expected);
    D* self = Wrap::Unwrap(value.As<Napi::Object>());
    FILM_TYPE_ERROR_IF(!self, expected);
    return self;
  }

  // Tests only (binding._internal.handoffOf): what load() hands the constructor, for this handle's
  // model, so that the constructors can be shown another class's handoff.
  static Napi::Value HandoffOf(Napi::Env env, const Napi::Value& handle) {
    return NewTaggedExternal(env, std::make_unique<std::shared_ptr<M>>(Self(handle)->Live()), HandoffTag());
  }

  // load(path, device, threads, half, ...D's own) -> Promise<D>
  static Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      FILM_TYPE_ERROR_IF(info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber() ||
                             !info[3].IsBoolean(),
                         "load(path: string, device: string, threads: number, half: boolean, ...)");
      LoadOptions options;
      options.path = info[0].As<Napi::String>();
      if (options.path.find('\0') != std::string::npos) {
        throw UserError(ErrorKind::kTypeError, "The model path must be a string without null bytes",
                        code::kInvalidArgValue);
      }
      options.device = info[1].As<Napi::String>();
      options.threads = info[2].As<Napi::Number>().Int32Value();
      options.half = info[3].As<Napi::Boolean>();
      D::ReadMoreLoadOptions(info, &options);
      return Task::Submit(env, std::make_shared<LoadTask>(env, std::move(options)));
    });
  }

  // Made by load() only: from the External its task hands over, tagged as this class's handoff.
  explicit BoundModel(const Napi::CallbackInfo& info) : Wrap(info) {
    Guard(info.Env(), [&]() -> Napi::Value {
      const std::string made_by = std::string(D::kName) + " is made by load(), not constructed";
      FILM_TYPE_ERROR_IF(info.Length() != 1, made_by);
      std::shared_ptr<M> model = std::move(*TaggedExternalData<std::shared_ptr<M>>(info[0], HandoffTag(), made_by));
      FILM_TYPE_ERROR_IF(!model, made_by);
      device_ = model->device_name();
      info_ = model->info();
      // When the last holder lets go (dispose(), or the last run in flight after it), the model is
      // destroyed, and freed memory is handed back to the system once nothing runs (idle_release.h).
      auto* owner = new std::shared_ptr<M>(std::move(model));
      std::shared_ptr<M> tracked(owner->get(), [owner](M*) {
        delete owner;
        ReleaseWhenIdle();
      });
      slot_ = std::make_shared<Slot<M>>(std::move(tracked));
      SetTypeTag(info.This(), InstanceTag());
      return info.Env().Undefined();
    });
  }

 protected:
  // load()'s arguments past the first four: none unless D says otherwise.
  static void ReadMoreLoadOptions(const Napi::CallbackInfo& /*info*/, LoadOptions* /*options*/) {}

  // The model, or ERR_FILM_DISPOSED.
  std::shared_ptr<M> Live() const {
    std::shared_ptr<M> model = slot_ ? slot_->Get() : nullptr;
    if (!model) throw UserError(ErrorKind::kError, D::kDisposed, code::kDisposed);
    return model;
  }

  // CPU intra-op threads a run wants: its own count, else the model's; a CUDA run needs one host thread.
  static int WantThreads(const M& model, double threads) {
    FILM_RANGE_ERROR_IF(!(threads >= 0 && threads <= 1024 && threads == static_cast<int>(threads)),
                        "Expected an integer threads from 0 to 1024");
    return model.is_cpu() ? (threads > 0 ? static_cast<int>(threads) : model.threads()) : 1;
  }

  // Queues task; returns {promise, cancel()}.
  static Napi::Object Submit(Napi::Env env, const std::shared_ptr<Task>& task) {
    Napi::Object job = Napi::Object::New(env);
    job.Set("promise", Task::Submit(env, task));
    std::weak_ptr<Task> weak = task;
    job.Set("cancel", Napi::Function::New(
                          env,
                          [weak](const Napi::CallbackInfo& call) {
                            if (auto t = weak.lock()) t->Cancel();
                            return call.Env().Undefined();
                          },
                          "cancel"));
    return job;
  }

  std::shared_ptr<Slot<M>> slot_;

 private:
  class LoadTask : public Task {
   public:
    LoadTask(Napi::Env env, LoadOptions options) : Task(env, 1), options_(std::move(options)) {}

   protected:
    void Run(int /*threads*/) override {
      try {
        model_ = M::Load(options_);
      } catch (const UserError& e) {
        // Load's own plain errors are all about what the file holds.
        if (e.kind() == ErrorKind::kError && std::string(e.code()) == code::kRuntime) {
          throw UserError(ErrorKind::kError, e.what(), code::kModelFormat);
        }
        throw;
      }
    }

    Napi::Value Result(Napi::Env env) override {
      // The constructor moves the model out of the External: nothing else keeps it.
      auto external = NewTaggedExternal(env, std::make_unique<std::shared_ptr<M>>(std::move(model_)), HandoffTag());
      return D::Constructor(AddonData::From(env)).New({external});
    }

   private:
    LoadOptions options_;
    std::shared_ptr<M> model_;
  };

  // One tag per class for its handoff External, another for its instances (tagged_external.h).
  static constexpr napi_type_tag HandoffTag() { return TypeTagOf(D::kName); }
  static constexpr napi_type_tag InstanceTag() {
    napi_type_tag tag = TypeTagOf(D::kName);
    tag.lower |= 1;
    return tag;
  }

  // A prototype function: method on the receiver, once Self() has checked it.
  template <auto method>
  static Napi::Value Call(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value { return (Self(info.This())->*method)(info); });
  }

  // Empties the slot; runs in flight keep the model until they finish, then it is freed.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (slot_) slot_->Reset();
    return info.Env().Undefined();
  }

  // null once disposed
  Napi::Value Device(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return slot_ && slot_->Get() ? Napi::String::New(env, device_) : env.Null();
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return slot_ && slot_->Get() ? D::InfoOf(env, info_) : env.Null();
  }

  std::string device_;
  std::decay_t<decltype(std::declval<const M&>().info())> info_;
};

// A number argument, or fallback when absent or not a number.
inline double OptionalNumber(const Napi::CallbackInfo& info, size_t i, double fallback) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : fallback;
}

}  // namespace film
