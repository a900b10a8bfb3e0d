// Intra-op thread counts per calling thread. at::set_num_threads also writes a process-wide value
// (and resizes the process-wide pthreadpool) that other threads adopt when they first run a
// parallel op, so concurrent runs would take each other's counts. OpenMP's own setting is per
// thread: we set that, on the calling thread only.
#pragma once

namespace film {

// The calling thread's parallel regions (ATen's and oneDNN's, both OpenMP here) use n threads.
void SetCallerThreads(int n);

// What the calling thread's next parallel region will use (at::get_num_threads()).
int CallerThreads();

// Cores this process may run on (its CPU affinity mask), at least 1.
int UsableCores();

}  // namespace film
