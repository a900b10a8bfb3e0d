// The JS-facing extractor: owns a shared Model; load and run are Promise-returning workers.
#pragma once

#include <napi.h>

#include <memory>

#include "model.h"

namespace film {

class Extractor : public Napi::ObjectWrap<Extractor> {
 public:
  static Napi::Function Define(Napi::Env env);
  // load(path, device, threads, half) -> Promise<Extractor>
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit Extractor(const Napi::CallbackInfo& info);

 private:
  // run(pyramid: {data, shape}[], copyOutputs: boolean) -> Promise<{data, shape}[]>
  Napi::Value Run(const Napi::CallbackInfo& info);
  // Drops this object's hold on the model; runs in flight keep theirs until they settle.
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  std::shared_ptr<Model> model_;
};

}  // namespace film
