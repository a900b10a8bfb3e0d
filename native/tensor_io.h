// Typed arrays <-> tensors without copies.
#pragma once

#include <napi.h>
#include <torch/script.h>

#include <vector>

namespace film {

// A pyramid level as seen from the worker thread: JS memory, kept alive by the worker.
struct InputLevel {
  float* data = nullptr;
  std::vector<int64_t> shape;
};

// Reads {data: Float32Array, shape: number[4]} on the main thread, re-checking what TS checked.
InputLevel ReadInputLevel(const Napi::Value& value, size_t index);

// A tensor over the level's memory; valid while the JS array is alive.
at::Tensor WrapInput(const InputLevel& level);

// A Float32Array whose ArrayBuffer is the tensor's own storage, released by a finalizer.
// Copies instead where the runtime forbids external buffers (Electron) or when asked to.
Napi::Float32Array ToFloat32Array(Napi::Env env, at::Tensor tensor, bool force_copy);

// The address of a typed array's first element, for tests that prove zero copy.
uint64_t DataAddress(const Napi::TypedArray& array);

}  // namespace film
