// Process-wide controls of the binding, in sharp's style (sharp.cache(), sharp.concurrency(),
// sharp.counters()): the CPU block cache, the executor's cores and its counters. Environment
// variables only set their defaults, read once when the addon loads.
#pragma once

#include <napi.h>

namespace film {

// cache(limitBytes?), concurrency(n?), counters(), releaseCachedMemory(), releaseWhenIdle()
void ExportControls(Napi::Env env, Napi::Object exports);

}  // namespace film
