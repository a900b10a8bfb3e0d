// The JS-facing extractor. load and run are Tasks on the addon's executor. The model is held in
// one place (ModelSlot): dispose() empties it, so the model is freed as soon as the runs that
// already took it finish, with no garbage collection needed.
#pragma once

#include <napi.h>

#include <memory>

#include "model.h"
#include "model_slot.h"

namespace film {

using ModelSlot = Slot<Model>;

class Extractor : public Napi::ObjectWrap<Extractor> {
 public:
  static Napi::Function Define(Napi::Env env);
  // load(path, device, threads, half) -> Promise<NativeExtractor>
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit Extractor(const Napi::CallbackInfo& info);

 private:
  // run(inputs: {data, shape}[], levels, threads, flags) -> {promise, cancel()}
  Napi::Value Run(const Napi::CallbackInfo& info);
  // Empties the slot; runs in flight keep the model until they finish, then it is freed.
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelSlot> slot_;
  std::string device_;
  ModelInfo info_;
};

}  // namespace film
