#include "tensor_io.h"

#include <cstring>
#include <limits>

#include "errors.h"

namespace film {

InputLevel ReadInputLevel(const Napi::Value& value, size_t index) {
  const std::string name = "pyramid[" + std::to_string(index) + "]";
  FILM_TYPE_ERROR_IF(!value.IsObject(), "Expected an object {data, shape} for " + name);
  Napi::Object level = value.As<Napi::Object>();
  Napi::Value data = level.Get("data");
  Napi::Value shape = level.Get("shape");
  FILM_TYPE_ERROR_IF(!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array,
                     "Expected a Float32Array for " + name + ".data");
  FILM_TYPE_ERROR_IF(!shape.IsArray(), "Expected an array for " + name + ".shape");
  Napi::Array dims = shape.As<Napi::Array>();
  FILM_RANGE_ERROR_IF(dims.Length() != 4, "Expected 4 dimensions for " + name + ".shape");

  InputLevel out;
  int64_t count = 1;
  for (uint32_t i = 0; i < 4; ++i) {
    Napi::Value dim = dims.Get(i);
    FILM_TYPE_ERROR_IF(!dim.IsNumber(), "Expected numbers in " + name + ".shape");
    const double d = dim.As<Napi::Number>().DoubleValue();
    FILM_RANGE_ERROR_IF(!(d >= 1 && d <= (1 << 30) && d == static_cast<int64_t>(d)),
                        "Expected positive integers in " + name + ".shape");
    FILM_RANGE_ERROR_IF(count > std::numeric_limits<int32_t>::max() / static_cast<int64_t>(d),
                        name + ".shape is too large");
    count *= static_cast<int64_t>(d);
    out.shape.push_back(static_cast<int64_t>(d));
  }
  FILM_RANGE_ERROR_IF(out.shape[1] != 3, "Expected 3 channels in " + name + ".shape");

  Napi::Float32Array array = data.As<Napi::Float32Array>();
  bool detached = false;
  napi_is_detached_arraybuffer(data.Env(), array.ArrayBuffer(), &detached);
  FILM_TYPE_ERROR_IF(detached, name + ".data is a detached ArrayBuffer (was it transferred?)");
  FILM_RANGE_ERROR_IF(static_cast<int64_t>(array.ElementLength()) != count,
                      name + ".data has " + std::to_string(array.ElementLength()) +
                          " elements; its shape needs " + std::to_string(count));
  out.data = array.Data();
  return out;
}

at::Tensor WrapInput(const InputLevel& level) {
  return torch::from_blob(level.data, level.shape, torch::TensorOptions().dtype(at::kFloat));
}

namespace {

struct Holder {
  at::Tensor tensor;
  int64_t bytes;
};

void ReleaseHolder(napi_env env, void* /*data*/, void* hint) {
  auto* holder = static_cast<Holder*>(hint);
  int64_t ignored;
  napi_adjust_external_memory(env, -holder->bytes, &ignored);
  delete holder;
}

}  // namespace

Napi::Float32Array ToFloat32Array(Napi::Env env, at::Tensor tensor, bool force_copy) {
  const size_t length = static_cast<size_t>(tensor.numel());
  const size_t bytes = length * sizeof(float);
  napi_status status = napi_no_external_buffers_allowed;
  napi_value buffer = nullptr;
  if (!force_copy) {
    auto* holder = new Holder{tensor, static_cast<int64_t>(bytes)};
    status = napi_create_external_arraybuffer(env, tensor.data_ptr<float>(), bytes, ReleaseHolder, holder, &buffer);
    if (status == napi_ok) {
      // Lets V8 see the memory it keeps alive, so the GC runs before RSS balloons.
      Napi::MemoryManagement::AdjustExternalMemory(env, holder->bytes);
    } else {
      delete holder;
    }
  }
  if (status == napi_no_external_buffers_allowed) {
    Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, bytes);
    std::memcpy(copy.Data(), tensor.data_ptr<float>(), bytes);
    buffer = copy;
  } else if (status != napi_ok) {
    NAPI_THROW_IF_FAILED(env, status, Napi::Float32Array());
  }
  return Napi::Float32Array::New(env, length, Napi::ArrayBuffer(env, buffer), 0);
}

uint64_t DataAddress(const Napi::TypedArray& array) {
  auto* base = static_cast<uint8_t*>(array.ArrayBuffer().Data());
  return reinterpret_cast<uint64_t>(base + array.ByteOffset());
}

}  // namespace film
