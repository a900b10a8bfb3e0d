// The JS-facing extractor (bound_model.h: load, dispose, device, info, jobs). The model is held in
// one place (its slot): dispose() empties it, so the model is freed as soon as the runs that
// already took it finish, with no garbage collection needed.
#pragma once

#include <napi.h>

#include "bound_model.h"
#include "model.h"

namespace film {

class Extractor : public BoundModel<Extractor, Model> {
 public:
  static constexpr const char* kName = "NativeExtractor";
  static constexpr const char* kDisposed = "This FeatureExtractor has been disposed";
  static Napi::FunctionReference& Constructor(AddonData* data) { return data->extractor_constructor; }
  // load(path, device, threads, half, engine, precision, weights): weights as lib/model-file read them
  static void ReadMoreLoadOptions(const Napi::CallbackInfo& info, LoadOptions* options);
  static Napi::Value InfoOf(Napi::Env env, const ModelInfo& info);

  using BoundModel::BoundModel;

  // run(inputs: {data, shape}[], levels, threads, flags) -> {promise, cancel()}
  Napi::Value Run(const Napi::CallbackInfo& info);
};

}  // namespace film
