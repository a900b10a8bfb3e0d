// The addon's own tensor: a dense, contiguous CPU array of float32, float16 or uint8 with a shape,
// whose bytes are shared by every copy of it. Every part of the core (the fused engine, input and
// output, frame runs, the writer) uses it, so none of them needs libtorch; the libtorch backend
// (native/torch/) converts at its edge without copying (torch/aten_tensor.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace film {

enum class DType { kFloat32, kFloat16, kUint8 };

size_t ItemSize(DType dtype);
const char* DTypeName(DType dtype);  // "float32", "float16", "uint8"

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory from the addon's CPU allocator (cpu_allocator.h), 64-byte aligned.
  static Tensor Empty(std::vector<int64_t> shape, DType dtype = DType::kFloat32);
  static Tensor Zeros(std::vector<int64_t> shape, DType dtype = DType::kFloat32);
  // Memory someone else owns: `owner` keeps it alive (it is released when the last copy goes).
  static Tensor Wrap(std::shared_ptr<void> owner, void* data, std::vector<int64_t> shape, DType dtype);

  bool defined() const { return data_ != nullptr || !shape_.empty(); }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& sizes() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t i) const { return shape_[static_cast<size_t>(i < 0 ? i + dim() : i)]; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * ItemSize(dtype_); }

  void* data() const { return data_; }
  template <typename T>
  T* data() const {
    return static_cast<T*>(data_);
  }
  // What keeps the bytes alive: hold it to keep them past this tensor.
  const std::shared_ptr<void>& owner() const { return owner_; }

  // Rows [row0, row0 + rows) of dimension 0, sharing these bytes.
  Tensor Slice0(int64_t row0, int64_t rows) const;
  // The same bytes under another shape of as many elements.
  Tensor Reshape(std::vector<int64_t> shape) const;

  std::string ShapeString() const;  // "[1, 3, 64, 64]"

 private:
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::kFloat32;
};

std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace film
