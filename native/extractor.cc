#include "extractor.h"

#include <utility>
#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "tensor_io.h"

namespace film {
namespace {

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, LoadOptions options) : PromiseWorker(env, "film-features:load"), options_(std::move(options)) {}

 protected:
  void Run() override { model_ = Model::Load(options_); }

  Napi::Value Result() override {
    Napi::Env env = Env();
    auto* handoff = new std::shared_ptr<Model>(std::move(model_));
    Napi::External<std::shared_ptr<Model>> external = Napi::External<std::shared_ptr<Model>>::New(
        env, handoff, [](Napi::Env, std::shared_ptr<Model>* p) { delete p; });
    return AddonData::From(env)->extractor_constructor.New({external});
  }

 private:
  LoadOptions options_;
  std::shared_ptr<Model> model_;
};

class RunWorker : public PromiseWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<Model> model, std::vector<InputLevel> levels, size_t level_count,
            int threads, Napi::Array keep_alive, bool copy_outputs)
      : PromiseWorker(env, "film-features:run"),
        model_(std::move(model)),
        levels_(std::move(levels)),
        level_count_(level_count),
        threads_(threads),
        keep_alive_(Napi::Persistent(keep_alive.As<Napi::Object>())),
        copy_outputs_(copy_outputs) {}

 protected:
  void Run() override {
    std::vector<at::Tensor> pyramid;
    pyramid.reserve(levels_.size());
    for (const auto& level : levels_) pyramid.push_back(WrapInput(level));
    features_ = model_->Run(pyramid, level_count_, threads_);
  }

  Napi::Value Result() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, features_.size());
    for (size_t i = 0; i < features_.size(); ++i) {
      const at::Tensor& t = features_[i];
      Napi::Array shape = Napi::Array::New(env, t.dim());
      for (int64_t d = 0; d < t.dim(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, t.size(d)));
      Napi::Object level = Napi::Object::New(env);
      level.Set("data", ToFloat32Array(env, t, copy_outputs_));
      level.Set("shape", shape);
      // Where the tensor's memory is; tests compare it with the array's to prove zero copy.
      level.Set("tensorAddress", Napi::BigInt::New(env, reinterpret_cast<uint64_t>(t.data_ptr())));
      out.Set(static_cast<uint32_t>(i), level);
    }
    features_.clear();
    return out;
  }

 private:
  std::shared_ptr<Model> model_;
  std::vector<InputLevel> levels_;
  size_t level_count_;
  int threads_;
  Napi::ObjectReference keep_alive_;  // the input arrays stay reachable until the run settles
  bool copy_outputs_;
  std::vector<at::Tensor> features_;
};

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
  model_ = *info[0].As<Napi::External<std::shared_ptr<Model>>>().Data();
}

Napi::Value Extractor::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber() ||
                           !info[3].IsBoolean(),
                       "load(path: string, device: string, threads: number, half: boolean, engine?: string)");
    FILM_TYPE_ERROR_IF(info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsString(), "engine must be a string");
    LoadOptions options;
    options.path = info[0].As<Napi::String>();
    options.device = info[1].As<Napi::String>();
    options.threads = info[2].As<Napi::Number>().Int32Value();
    options.half = info[3].As<Napi::Boolean>();
    if (info.Length() > 4 && info[4].IsString()) options.engine = info[4].As<Napi::String>();
    auto* worker = new LoadWorker(env, std::move(options));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value Extractor::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    FILM_ERROR_IF(!model_, "this FeatureExtractor has been disposed");
    auto optional_number = [&](size_t i) { return info.Length() <= i || info[i].IsUndefined() || info[i].IsNumber(); };
    FILM_TYPE_ERROR_IF(info.Length() < 2 || !info[0].IsArray() || !info[1].IsBoolean() || !optional_number(2) ||
                           !optional_number(3),
                       "run(pyramid: {data, shape}[], copyOutputs: boolean, levels?: number, threads?: number)");
    Napi::Array pyramid = info[0].As<Napi::Array>();
    FILM_RANGE_ERROR_IF(pyramid.Length() == 0, "Expected at least one level in pyramid");
    const double level_count =
        info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : pyramid.Length();
    FILM_RANGE_ERROR_IF(!(level_count >= pyramid.Length() && level_count <= 32 &&
                          level_count == static_cast<int>(level_count)),
                        "Expected an integer levels >= the pyramid's length");
    const double threads = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 0;
    FILM_RANGE_ERROR_IF(!(threads >= 0 && threads <= 1024 && threads == static_cast<int>(threads)),
                        "Expected an integer threads from 0 to 1024");
    std::vector<InputLevel> levels;
    Napi::Array keep_alive = Napi::Array::New(env, pyramid.Length());
    for (uint32_t i = 0; i < pyramid.Length(); ++i) {
      Napi::Value level = pyramid.Get(i);
      levels.push_back(ReadInputLevel(level, i));
      keep_alive.Set(i, level.As<Napi::Object>().Get("data"));
    }
    const int64_t extra = static_cast<int64_t>(level_count) - static_cast<int64_t>(levels.size());
    FILM_RANGE_ERROR_IF(((levels.back().shape[2] >> extra) < 1 || (levels.back().shape[3] >> extra) < 1),
                        "the coarsest level is too small to pool " + std::to_string(extra) + " more levels from");
    auto* worker = new RunWorker(env, model_, std::move(levels), static_cast<size_t>(level_count),
                                 static_cast<int>(threads), keep_alive,
                                 info[1].As<Napi::Boolean>());
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value Extractor::Dispose(const Napi::CallbackInfo& info) {
  model_.reset();
  return info.Env().Undefined();
}

Napi::Value Extractor::Device(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return model_ ? Napi::String::New(env, model_->device_name()) : env.Null();
}

Napi::Value Extractor::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) return env.Null();
  const ModelInfo& m = model_->info();
  Napi::Object out = Napi::Object::New(env);
  out.Set("source", m.source);
  out.Set("channels", Napi::Number::New(env, static_cast<double>(m.channels)));
  out.Set("subLevels", Napi::Number::New(env, static_cast<double>(m.sub_levels)));
  out.Set("dtype", m.dtype);
  out.Set("optimized", m.optimized);
  out.Set("engine", m.engine);
  if (!m.isa.empty()) out.Set("isa", m.isa);
  return out;
}

}  // namespace film
