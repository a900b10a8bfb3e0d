// JS inputs -> tensors, tensors -> JS outputs.
// Inputs are copied on the JS thread before a run is queued: the copy is the addon's own, so no
// later JS (a transfer, a detach, a getter returning another array) can free what a run reads.
// The copy is about 0.5% of the output's bytes (an eighth of that for 8-bit pixels).
// Outputs are zero-copy: each Float32Array's memory is the output tensor's own.
#pragma once

#include <napi.h>

#include <vector>

#include "tensor.h"

#include <string>

namespace film {

// An input as copied off the JS heap.
struct HostInput {
  Tensor pixels;         // float32 [n, 3, h, w], or uint8 [n, h, w, c] when interleaved
  bool interleaved = false;  // 8-bit, channels last, c = 3 or 4 (alpha is dropped)
  std::string name;          // how errors name it: "image", "pyramid[2]"
};

// Reads {data, shape: [n, c, h, w]} on the JS thread, each property exactly once, and copies data.
// data: Float32Array (planar NCHW, c = 3) or Uint8Array / Uint8ClampedArray / Buffer (interleaved
// NHWC, c = 3 or 4).
HostInput ReadInput(const Napi::Value& value, const std::string& name);

// Off the JS thread: the input as float32 NCHW with 3 channels. 8-bit values map to v / 255 rounded
// once (as the TypeScript imageToTensor utility does). Float values must be finite and within
// [kMinValue, kMaxValue]: anything else is a RangeError naming the first bad position (0-255
// floats are the usual mistake).
Tensor InputTensor(const HostInput& input);
constexpr float kMinValue = -1.0f;
constexpr float kMaxValue = 2.0f;

// FILM's pyramid from level 0 on the CPU, off the JS thread: 2x2 average pooling, odd sizes floored,
// each value summed and scaled in double and rounded once. Every hot path pools here (or on the
// device); TypeScript's buildPyramid is a utility, and nothing depends on the two agreeing bit for bit.
std::vector<Tensor> CpuPyramid(const Tensor& level0, size_t levels);

// [N, C, H, W] float32 -> [N, C, H / 2, W / 2]: 2x2 average pooling, stride 2, odd sizes floored,
// summed in float as avg_pool2d sums: levels past a given pyramid's (model.cc), and FILM's image
// pyramid (onednn/film_net.cc).
Tensor AvgPool2x2(const Tensor& nchw);

// A Float32Array whose ArrayBuffer is the tensor's own storage, released by a finalizer.
// Copies instead where the runtime forbids external buffers (Electron) or when asked to.
Napi::Float32Array ToFloat32Array(Napi::Env env, Tensor tensor, bool force_copy);
// The same for uint8 tensors (8-bit pixels).
Napi::Uint8Array ToUint8Array(Napi::Env env, Tensor tensor, bool force_copy);

// The typed array for a float32, float16 (Uint16Array of the bits) or uint8 tensor, as above.
Napi::TypedArray ToTypedArray(Napi::Env env, Tensor tensor, bool force_copy);

// {data, shape}[] for the tensors (float32: Float32Array; float16: Uint16Array; uint8: Uint8Array). with_addresses adds
// each tensor's data pointer as tensorAddress (a test hook: equal to dataAddress(data) unless the output was copied).
Napi::Array ToOutputs(Napi::Env env, std::vector<Tensor>& tensors, bool force_copy, bool with_addresses);

// The address of a typed array's first element, for tests that prove zero copy.
uint64_t DataAddress(const Napi::TypedArray& array);

}  // namespace film
