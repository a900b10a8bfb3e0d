// Hooks for the package's own tests, all in one clearly internal export (binding._internal), kept
// out of the public types: the tests run the very binary that ships, not a test build of it.
#pragma once

#include <napi.h>

namespace film {

// binding._internal: dataAddress(typedArray), idleReleases(), threadCounters(), defaultCacheLimit(root),
// RUN_WITH_ADDRESSES (a run() flag: each output carries its tensor's address as tensorAddress).
void ExportInternal(Napi::Env env, Napi::Object exports);

}  // namespace film
