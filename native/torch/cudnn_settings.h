// cuDNN's benchmark mode: cuDNN times its convolution algorithms on the first run of each input
// shape and keeps the fastest. It wins when frames of one size repeat (video) and costs a slow first
// run per new shape. The flag is process-wide in libtorch, so it is set here once, when the addon
// first loads (FILM_FEATURES_CUDNN_BENCHMARK=0 turns it off; on by default), and afterwards only by
// an explicit setCudnnBenchmark() from JS, never by a load or a run. No effect on the CPU.
#pragma once

#include <napi.h>

namespace film {

// Applies FILM_FEATURES_CUDNN_BENCHMARK once per process (not once per worker_thread).
void InitCudnnBenchmark();

// exports.setCudnnBenchmark(enabled: boolean) and exports.cudnnBenchmark(): boolean.
void ExportCudnnSettings(Napi::Env env, Napi::Object exports);

}  // namespace film
