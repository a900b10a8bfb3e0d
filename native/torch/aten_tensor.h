// film::Tensor <-> at::Tensor at the libtorch backend's edge, without copying: each side keeps the
// other's memory alive for as long as it holds it.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "tensor.h"

namespace film {

inline at::ScalarType ScalarTypeOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return at::kHalf;
    case DType::kUint8: return at::kByte;
    default: return at::kFloat;
  }
}

// A CPU at::Tensor over t's bytes; t's owner lives as long as the at::Tensor's storage.
inline at::Tensor ToAten(const Tensor& t) {
  std::shared_ptr<void> owner = t.owner();
  return at::from_blob(t.data(), at::IntArrayRef(t.sizes()), [owner](void*) mutable { owner.reset(); },
                       at::TensorOptions().dtype(ScalarTypeOf(t.dtype())));
}

// t as a film::Tensor: on the CPU, contiguous, float32 / float16 / uint8 (copied only where it is not).
inline Tensor FromAten(at::Tensor t) {
  if (t.is_mkldnn()) t = t.to_dense();
  t = t.cpu().contiguous();
  DType dtype;
  switch (t.scalar_type()) {
    case at::kFloat: dtype = DType::kFloat32; break;
    case at::kHalf: dtype = DType::kFloat16; break;
    case at::kByte: dtype = DType::kUint8; break;
    default: t = t.to(at::kFloat); dtype = DType::kFloat32;
  }
  void* data = t.data_ptr();
  std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
  return Tensor::Wrap(std::shared_ptr<void>(data, [t](void*) mutable { t.reset(); }), data, std::move(shape), dtype);
}

}  // namespace film
