// The JS-facing interpolator: a whole FILM file (film_interpolator.h). Built from the extractor's parts:
// bound_model.h's load, dispose, device, info and jobs, inputs read and copied by tensor_io,
// zero-copy outputs, the same errors and the same slot that dispose() empties.
#pragma once

#include <napi.h>

#include "bound_model.h"
#include "film_interpolator.h"

namespace film {

// loadInterpolator(path, device, threads, half, engine, weights): weights as lib/model-file read them.
class Interpolator : public BoundModel<Interpolator, FilmInterpolator> {
 public:
  using BoundModel::BoundModel;
  static constexpr const char* kName = "NativeInterpolator";
  static constexpr const char* kDisposed = "This Interpolator has been disposed";
  static Napi::FunctionReference& Constructor(AddonData* data) { return data->interpolator_constructor; }
  static Napi::Value InfoOf(Napi::Env env, const InterpolatorInfo& info);
  static void ReadMoreLoadOptions(const Napi::CallbackInfo& info, LoadOptions* options);

  // run(a: input[], b: input[], times: number[], recursions, threads, flags) -> {promise, cancel()}
  // a[i], b[i]: {data, shape} as the extractor reads them; the lists are stacked into one batch.
  // flags: bound_model.h's, 4 (8-bit frames), 32 (recursion feeds back the padded prediction).
  Napi::Value Run(const Napi::CallbackInfo& info);
};

}  // namespace film
