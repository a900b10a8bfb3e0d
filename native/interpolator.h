// The JS-facing interpolator: a whole FILM TorchScript file. Built from the extractor's parts:
// Tasks on the addon's executor, inputs read and copied by tensor_io, zero-copy outputs, the same
// errors and the same slot that dispose() empties.
#pragma once

#include <napi.h>

#include <memory>

#include "interpolator_model.h"
#include "model_slot.h"

namespace film {

class Interpolator : public Napi::ObjectWrap<Interpolator> {
 public:
  static Napi::Function Define(Napi::Env env);
  // loadInterpolator(path, device, threads, half) -> Promise<NativeInterpolator>
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit Interpolator(const Napi::CallbackInfo& info);

 private:
  // run(a: input[], b: input[], times: number[], recursions, threads, flags) -> {promise, cancel()}
  // a[i], b[i]: {data, shape} as the extractor reads them; the lists are stacked into one batch.
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  std::shared_ptr<Slot<InterpolatorModel>> slot_;
  std::string device_;
  InterpolatorInfo info_;
};

}  // namespace film
