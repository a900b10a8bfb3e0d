// Per-environment state (main thread and each worker_thread get their own), never static JS refs.
#pragma once

#include <napi.h>

namespace film {

struct AddonData {
  Napi::FunctionReference extractor_constructor;

  static AddonData* From(Napi::Env env) { return env.GetInstanceData<AddonData>(); }
};

}  // namespace film
