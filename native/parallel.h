// A loop split over the calling thread's OpenMP threads (its own omp_set_num_threads, threads.h),
// in chunks of at least `grain` iterations; inline where there is too little work or where it
// already runs inside a parallel region. The core's one way to run in parallel (the oneDNN engine
// uses the same OpenMP runtime).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace film {

template <typename F>
void ParallelFor(int64_t begin, int64_t end, int64_t grain, const F& body) {
  const int64_t work = end - begin;
  if (work <= 0) return;
  const int64_t chunks = std::min<int64_t>(omp_get_max_threads(), (work + grain - 1) / std::max<int64_t>(grain, 1));
  if (chunks <= 1 || omp_in_parallel()) {
    body(begin, end);
    return;
  }
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) body(begin + work * c / chunks, begin + work * (c + 1) / chunks);
}

}  // namespace film
