#include "tensor_io.h"


#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "errors.h"
#include "parallel.h"

namespace film {
namespace {

// The binding's checks of what it is given. TypeScript validates every input first, with the
// messages users see (lib/validate.ts, lib/input.ts); these only keep the binding safe when it is
// called some other way, so they are short and say so.
std::string Guard(const std::string& what, const std::string& why) { return "invalid binding input " + what + ": " + why; }

// Shape [n, c, h, w] of positive integers whose product fits V8's typed-array lengths.
std::array<int64_t, 4> ReadShape(const Napi::Value& value, const std::string& name, int64_t* count) {
  FILM_TYPE_ERROR_IF(!value.IsArray(), Guard(name + ".shape", "not an array [n, c, h, w]"));
  Napi::Array dims = value.As<Napi::Array>();
  FILM_RANGE_ERROR_IF(dims.Length() != 4, Guard(name + ".shape", "not 4 dimensions [n, c, h, w]"));
  std::array<int64_t, 4> shape{};
  *count = 1;
  for (uint32_t i = 0; i < 4; ++i) {
    Napi::Value dim = dims.Get(i);
    const std::string at = name + ".shape[" + std::to_string(i) + "]";
    FILM_TYPE_ERROR_IF(!dim.IsNumber(), Guard(at, "not an integer"));
    const double d = dim.As<Napi::Number>().DoubleValue();
    FILM_RANGE_ERROR_IF(!(d >= 1 && d <= (1 << 30) && d == static_cast<int64_t>(d)),
                        Guard(at, "not a positive integer"));
    FILM_RANGE_ERROR_IF(*count > std::numeric_limits<int32_t>::max() / static_cast<int64_t>(d),
                        Guard(name + ".shape", "more than 2147483647 elements"));
    *count *= static_cast<int64_t>(d);
    shape[i] = static_cast<int64_t>(d);
  }
  return shape;
}

// v / 255 for every byte, computed in double and rounded once, like imageToTensor in TypeScript.
const std::array<float, 256>& ByteScale() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = static_cast<float>(v / 255.0);
    return t;
  }();
  return table;
}

std::string Position(int64_t index, const Tensor& t) {
  const int64_t w = t.size(3), h = t.size(2), c = t.size(1);
  return "[" + std::to_string(index) + "] (n " + std::to_string(index / (c * h * w)) + ", c " +
         std::to_string(index / (h * w) % c) + ", y " + std::to_string(index / w % h) + ", x " +
         std::to_string(index % w) + ")";
}

void CheckValues(const Tensor& t, const std::string& name) {
  const float* p = t.data<float>();
  std::atomic<int64_t> first{std::numeric_limits<int64_t>::max()};
  ParallelFor(0, t.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      // Written so that NaN fails too.
      if (!(p[i] >= kMinValue && p[i] <= kMaxValue)) {
        int64_t seen = first.load();
        while (i < seen && !first.compare_exchange_weak(seen, i)) {
        }
        return;
      }
    }
  });
  const int64_t bad = first.load();
  if (bad == std::numeric_limits<int64_t>::max()) return;
  const float v = p[bad];
  const std::string where = name + ".data" + Position(bad, t);
  FILM_RANGE_ERROR_IF(std::isnan(v), where + " is NaN");
  FILM_RANGE_ERROR_IF(true, where + " is " + std::to_string(v) + "; expected values in [0, 1] (at least within [" +
                                std::to_string(static_cast<int>(kMinValue)) + ", " +
                                std::to_string(static_cast<int>(kMaxValue)) +
                                "]): divide 0-255 data by 255, or pass the bytes as a Uint8Array");
}

}  // namespace

HostInput ReadInput(const Napi::Value& value, const std::string& name) {
  FILM_TYPE_ERROR_IF(!value.IsObject(), Guard(name, "not an object {data, shape}"));
  Napi::Object object = value.As<Napi::Object>();
  // shape first: reading it may run JS (getters), reading data must not be followed by any.
  int64_t count = 0;
  const std::array<int64_t, 4> shape = ReadShape(object.Get("shape"), name, &count);
  Napi::Value data = object.Get("data");
  FILM_TYPE_ERROR_IF(!data.IsTypedArray(),
                     Guard(name + ".data", "not a Float32Array or Uint8Array"));
  Napi::TypedArray array = data.As<Napi::TypedArray>();
  const napi_typedarray_type type = array.TypedArrayType();
  HostInput input;
  input.name = name;
  if (type == napi_float32_array) {
    FILM_RANGE_ERROR_IF(shape[1] != 3, Guard(name + ".shape", "float data needs 3 channels"));
    input.pixels = Tensor::Empty({shape[0], shape[1], shape[2], shape[3]});
  } else if (type == napi_uint8_array || type == napi_uint8_clamped_array) {
    FILM_RANGE_ERROR_IF(shape[1] != 3 && shape[1] != 4, Guard(name + ".shape", "8-bit data needs 3 or 4 channels"));
    input.interleaved = true;
    input.pixels = Tensor::Empty({shape[0], shape[2], shape[3], shape[1]}, DType::kUint8);
  } else {
    FILM_TYPE_ERROR_IF(true, Guard(name + ".data", "not a Float32Array or Uint8Array"));
  }
  // The view's own pointer: works for an ArrayBuffer and a SharedArrayBuffer alike (the bytes are
  // copied here either way), where ArrayBuffer().Data() fails on a shared one.
  size_t length = 0;
  void* base = nullptr;
  napi_value buffer = nullptr;
  FILM_ERROR_IF(napi_get_typedarray_info(data.Env(), array, nullptr, &length, &base, &buffer, nullptr) != napi_ok,
                "cannot read " + name + ".data");
  bool is_plain = false;
  bool detached = false;
  if (napi_is_arraybuffer(data.Env(), buffer, &is_plain) == napi_ok && is_plain) {
    napi_is_detached_arraybuffer(data.Env(), buffer, &detached);
  }
  FILM_TYPE_ERROR_IF(detached, Guard(name + ".data", "a detached ArrayBuffer"));
  FILM_RANGE_ERROR_IF(static_cast<int64_t>(length) != count,
                      Guard(name + ".data", std::to_string(length) + " elements where its shape needs " + std::to_string(count)));
  if (input.pixels.nbytes() > 0) std::memcpy(input.pixels.data(), base, input.pixels.nbytes());
  return input;
}

Tensor InputTensor(const HostInput& input) {
  if (!input.interleaved) {
    CheckValues(input.pixels, input.name);
    return input.pixels;
  }
  const Tensor& bytes = input.pixels;  // [n, h, w, c]
  const int64_t n = bytes.size(0), h = bytes.size(1), w = bytes.size(2), c = bytes.size(3);
  Tensor out = Tensor::Empty({n, 3, h, w});
  const uint8_t* src = bytes.data<uint8_t>();
  float* dst = out.data<float>();
  const std::array<float, 256>& scale = ByteScale();
  const int64_t plane = h * w;
  ParallelFor(0, n * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t image = row / h;
      const uint8_t* s = src + row * w * c;
      float* d = dst + image * 3 * plane + (row % h) * w;
      for (int64_t x = 0; x < w; ++x, s += c) {
        d[x] = scale[s[0]];
        d[plane + x] = scale[s[1]];
        d[2 * plane + x] = scale[s[2]];
      }
    }
  });
  return out;
}

std::vector<Tensor> CpuPyramid(const Tensor& level0, size_t levels) {
  std::vector<Tensor> pyramid{level0};
  for (size_t i = 1; i < levels; ++i) {
    const Tensor& in = pyramid.back();
    const int64_t planes = in.size(0) * in.size(1), h = in.size(2), w = in.size(3);
    const int64_t oh = h / 2, ow = w / 2;
    Tensor out = Tensor::Empty({in.size(0), in.size(1), oh, ow});
    const float* src = in.data<float>();
    float* dst = out.data<float>();
    ParallelFor(0, planes * oh, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const float* top = src + (row / oh) * h * w + 2 * (row % oh) * w;
        const float* bottom = top + w;
        float* o = dst + row * ow;
        for (int64_t x = 0; x < ow; ++x) {
          const double sum = static_cast<double>(top[2 * x]) + top[2 * x + 1] + bottom[2 * x] + bottom[2 * x + 1];
          o[x] = static_cast<float>(sum * 0.25);
        }
      }
    });
    pyramid.push_back(out);
  }
  return pyramid;
}

Tensor AvgPool2x2(const Tensor& in) {
  const int64_t planes = in.size(0) * in.size(1), h = in.size(2), w = in.size(3), oh = h / 2, ow = w / 2;
  Tensor out = Tensor::Empty({in.size(0), in.size(1), oh, ow});
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  ParallelFor(0, planes * oh, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float* a = src + (row / oh) * h * w + 2 * (row % oh) * w;
      const float* b = a + w;
      for (int64_t x = 0; x < ow; ++x) dst[row * ow + x] = (((a[2 * x] + a[2 * x + 1]) + b[2 * x]) + b[2 * x + 1]) * 0.25f;
    }
  });
  return out;
}

namespace {

struct Holder {
  Tensor tensor;
  int64_t bytes;
};

void ReleaseHolder(napi_env env, void* /*data*/, void* hint) {
  auto* holder = static_cast<Holder*>(hint);
  int64_t ignored;
  napi_adjust_external_memory(env, -holder->bytes, &ignored);
  delete holder;
}

}  // namespace

// An ArrayBuffer over the tensor's storage, released by a finalizer; a copy where the runtime
// forbids external buffers (Electron) or when asked to.
Napi::ArrayBuffer TensorArrayBuffer(Napi::Env env, const Tensor& tensor, bool force_copy) {
  const size_t bytes = tensor.nbytes();
  napi_status status = napi_no_external_buffers_allowed;
  napi_value buffer = nullptr;
  // An empty tensor has no storage to lend: an external buffer over null would read as detached.
  if (!force_copy && bytes > 0) {
    auto* holder = new Holder{tensor, static_cast<int64_t>(bytes)};
    status = napi_create_external_arraybuffer(env, tensor.data(), bytes, ReleaseHolder, holder, &buffer);
    if (status == napi_ok) {
      // Lets V8 see the memory it keeps alive, so the GC runs before RSS balloons.
      Napi::MemoryManagement::AdjustExternalMemory(env, holder->bytes);
    } else {
      delete holder;
    }
  }
  if (status == napi_no_external_buffers_allowed) {
    Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, bytes);
    if (bytes > 0) std::memcpy(copy.Data(), tensor.data(), bytes);
    buffer = copy;
  } else if (status != napi_ok) {
    NAPI_THROW_IF_FAILED(env, status, Napi::ArrayBuffer());
  }
  return Napi::ArrayBuffer(env, buffer);
}

Napi::Float32Array ToFloat32Array(Napi::Env env, Tensor tensor, bool force_copy) {
  return Napi::Float32Array::New(env, static_cast<size_t>(tensor.numel()), TensorArrayBuffer(env, tensor, force_copy), 0);
}

Napi::Uint8Array ToUint8Array(Napi::Env env, Tensor tensor, bool force_copy) {
  return Napi::Uint8Array::New(env, static_cast<size_t>(tensor.numel()), TensorArrayBuffer(env, tensor, force_copy), 0);
}

Napi::TypedArray ToTypedArray(Napi::Env env, Tensor tensor, bool force_copy) {
  const size_t length = static_cast<size_t>(tensor.numel());
  switch (tensor.dtype()) {
    case DType::kUint8:
      return ToUint8Array(env, tensor, force_copy);
    case DType::kFloat16:
      return Napi::Uint16Array::New(env, length, TensorArrayBuffer(env, tensor, force_copy), 0);
    default:
      return ToFloat32Array(env, tensor, force_copy);
  }
}

Napi::Array ToOutputs(Napi::Env env, std::vector<Tensor>& tensors, bool force_copy, bool with_addresses) {
  Napi::Array out = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    Napi::Array shape = Napi::Array::New(env, t.dim());
    for (int64_t d = 0; d < t.dim(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, t.size(d)));
    Napi::Object level = Napi::Object::New(env);
    level.Set("data", ToTypedArray(env, t, force_copy));
    level.Set("shape", shape);
    if (with_addresses) level.Set("tensorAddress", Napi::BigInt::New(env, reinterpret_cast<uint64_t>(t.data())));
    out.Set(static_cast<uint32_t>(i), level);
  }
  tensors.clear();
  return out;
}

uint64_t DataAddress(const Napi::TypedArray& array) {
  void* data = nullptr;
  napi_get_typedarray_info(array.Env(), array, nullptr, nullptr, &data, nullptr, nullptr);
  return reinterpret_cast<uint64_t>(data);
}

}  // namespace film
