// libtorch's CPU allocator, made the addon's block cache (cpu_allocator.h). The full build only.
#pragma once

#include "cpu_allocator.h"

namespace film {

// Once per process, before anything runs on libtorch.
void InstallTorchAllocator();
// Whether libtorch allocates from the cache (and a foreign block freed through it went back to
// libtorch's own allocator without a crash).
CpuCacheProbe ProbeTorchAllocator();

}  // namespace film
