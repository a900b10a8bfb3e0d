// Intra-op thread counts per calling thread. OpenMP's setting is per thread: we set that, on the
// calling thread only (at::set_num_threads would also write a process-wide value that other threads
// adopt, so concurrent runs would take each other's counts).
#pragma once

namespace film {

// The calling thread's parallel regions (ours, oneDNN's and, in the full build, ATen's: all OpenMP) use n threads.
void SetCallerThreads(int n);

// What the calling thread's next parallel region will use (omp_get_max_threads()).
int CallerThreads();

// Cores this process may run on (its CPU affinity mask), at least 1.
int UsableCores();

}  // namespace film
