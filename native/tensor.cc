#include "tensor.h"

#include <cstring>
#include <stdexcept>
#include <utility>

#include "cpu_allocator.h"

namespace film {

size_t ItemSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kUint8: return 1;
  }
  return 1;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kUint8: return "uint8";
  }
  return "?";
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return shape_.empty() && !data_ ? 0 : n;
}

Tensor Tensor::Empty(std::vector<int64_t> shape, DType dtype) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  for (int64_t d : t.shape_) {
    if (d < 0) throw std::invalid_argument("a tensor of shape " + film::ShapeString(t.shape_));
  }
  const size_t bytes = t.nbytes();
  // no block for no bytes; a shared owner anyway, so that copies agree on being empty
  void* data = bytes ? AllocateCpu(bytes) : nullptr;
  t.owner_ = std::shared_ptr<void>(data, [](void* p) { FreeCpu(p); });
  t.data_ = data;
  return t;
}

Tensor Tensor::Zeros(std::vector<int64_t> shape, DType dtype) {
  Tensor t = Empty(std::move(shape), dtype);
  if (t.nbytes()) std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::Wrap(std::shared_ptr<void> owner, void* data, std::vector<int64_t> shape, DType dtype) {
  Tensor t;
  t.owner_ = std::move(owner);
  t.data_ = data;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::Slice0(int64_t row0, int64_t rows) const {
  const int64_t row_bytes = shape_.empty() ? 0 : static_cast<int64_t>(nbytes()) / std::max<int64_t>(shape_[0], 1);
  if (row0 < 0 || rows < 0 || row0 + rows > size(0)) throw std::out_of_range("Slice0 past the tensor");
  Tensor t = *this;
  t.shape_[0] = rows;
  t.data_ = static_cast<char*>(data_) + row0 * row_bytes;
  return t;
}

Tensor Tensor::Reshape(std::vector<int64_t> shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  if (t.numel() != numel()) throw std::invalid_argument("Reshape " + ShapeString() + " to " + t.ShapeString());
  return t;
}

std::string Tensor::ShapeString() const { return film::ShapeString(shape_); }

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace film
