// Per-environment state (main thread and each worker_thread get their own), never static JS refs.
#pragma once

#include <napi.h>

#include <memory>

namespace film {

class EnvLink;

struct AddonData {
  Napi::FunctionReference extractor_constructor;
  Napi::FunctionReference interpolator_constructor;
  std::shared_ptr<EnvLink> link;  // brings finished tasks back to this env

  static AddonData* From(Napi::Env env) { return env.GetInstanceData<AddonData>(); }
};

}  // namespace film
