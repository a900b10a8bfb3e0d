// Handing cached and freed memory back to the system without slowing anyone down: after a model is
// destroyed, or between the bands of a large frame. It runs on an executor thread when no run is in
// flight in the process (never on the JS thread, never under another job's feet).
#pragma once

#include <cstddef>
#include <cstdint>

namespace film {

// Schedules one release (requests made before it runs are merged): the CPU block cache, the C
// heap's free pages (malloc_trim), and on CUDA the caching allocator's unused blocks and the idle
// pinned staging buffers.
void ReleaseWhenIdle();

// The same release on the calling thread, now (FeatureExtractor.cache({ memory: 0 })); returns the
// CPU cache bytes freed. Never throws.
size_t ReleaseMemoryNow();

// How many idle releases have run in this process.
uint64_t IdleReleases();

}  // namespace film
