#include "threads.h"

#include <omp.h>
#include <sched.h>

#include <thread>

#include "backend.h"

namespace film {

void SetCallerThreads(int n) {
  if (n < 1) n = 1;
  // libtorch first (its own thread setup, and its OpenMP where that is another copy), then ours.
  backend::SetTorchThreads(n);
  omp_set_num_threads(n);
}

int CallerThreads() { return omp_get_max_threads(); }

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

}  // namespace film
