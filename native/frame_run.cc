#include "frame_run.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FILM_F16C 1
#endif

#include "errors.h"
#include "parallel.h"
#include "tensor_io.h"

namespace film {
namespace {

// The plan is made by TypeScript; a bad one is a bug there (or a caller of the raw binding), so
// messages are short and name the field.
[[noreturn]] void BadPlan(const std::string& what) {
  throw UserError(ErrorKind::kRangeError, "invalid frame plan: " + what, code::kInvalidArgValue);
}

int64_t Int(const Napi::Value& v, const std::string& name, int64_t min, int64_t max) {
  if (!v.IsNumber()) BadPlan(name + " is not a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max) && d == static_cast<double>(static_cast<int64_t>(d)))) {
    BadPlan(name + " is not an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int64_t>(d);
}

Napi::Array Array(const Napi::Value& v, const std::string& name, uint32_t length) {
  if (!v.IsArray()) BadPlan(name + " is not an array");
  Napi::Array a = v.As<Napi::Array>();
  if (length && a.Length() != length) BadPlan(name + " needs " + std::to_string(length) + " numbers");
  return a;
}

// float32 bits -> IEEE half bits, rounding to nearest even; overflow to +-Infinity, NaN to 0x7e00.
uint16_t HalfBits(float value) {
  uint32_t x;
  std::memcpy(&x, &value, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  uint32_t h;
  if (a >= 0x47800000u) {
    h = a > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (a >= 0x38800000u) {
    // normal: rebias the exponent by 112, round the 13 dropped bits to nearest even
    h = (a - 0x37fff001u + ((a >> 13) & 1u)) >> 13;
  } else if (a < 0x33000000u) {
    h = 0;  // below half the smallest subnormal
  } else {
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - (a >> 23);
    const uint32_t q = m >> shift;
    const uint32_t rem = m - (q << shift);
    const uint32_t halfway = 1u << (shift - 1);
    h = rem > halfway || (rem == halfway && (q & 1u)) ? q + 1 : q;
  }
  return static_cast<uint16_t>(sign | h);
}

void HalfPortable(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = HalfBits(src[i]);
}

#ifdef FILM_F16C
// vcvtps2ph with imm 0 rounds to nearest even, whatever MXCSR says; NaNs keep their payload's top bits.
__attribute__((target("avx,f16c"))) void HalfF16c(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  HalfPortable(src + i, dst + i, n - i);
}
#endif

using HalfFn = void (*)(const float*, uint16_t*, int64_t);

HalfFn PickHalf() {
#ifdef FILM_F16C
  if (__builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c")) return HalfF16c;
#endif
  return HalfPortable;
}

// Rows [first, last) of every image in pixels: uint8 [n, h, w, c] or float [n, 3, h, w].
Tensor RowsOf(const Tensor& px, bool interleaved, int64_t first, int64_t last) {
  const int64_t n = px.size(0);
  std::vector<int64_t> shape = px.sizes();
  shape[interleaved ? 1 : 2] = last - first;
  Tensor out = Tensor::Empty(shape, px.dtype());
  // one image (interleaved) or one plane (planar) is `h` rows of `row` bytes
  const int64_t planes = interleaved ? n : n * 3, h = interleaved ? px.size(1) : px.size(2);
  const size_t row = px.nbytes() / static_cast<size_t>(planes * h);
  for (int64_t i = 0; i < planes; ++i) {
    std::memcpy(out.data<char>() + i * (last - first) * row, px.data<char>() + (i * h + first) * row,
                (last - first) * row);
  }
  return out;
}

// Level-0 rows [row0, row1) of the padded frame, float32 [n, 3, rows, width]: the image's rows in
// that range converted (8-bit: v / 255) and placed at plan.left, zeros around.
Tensor PaddedRows(const HostInput& input, const FramePlan& p, int64_t row0, int64_t row1) {
  const Tensor& px = input.pixels;  // uint8 [n, h, w, c] or float [n, 3, h, w]
  const int64_t h = input.interleaved ? px.size(1) : px.size(2);
  const int64_t w = input.interleaved ? px.size(2) : px.size(3);
  const int64_t first = std::max(row0, p.top) - p.top;  // image rows taken
  const int64_t last = std::min(row1, p.top + h) - p.top;
  const bool whole = row0 == 0 && row1 == p.height && p.height == h && p.width == w;
  const int64_t n = px.size(0);
  if (first >= last) return Tensor::Zeros({n, 3, row1 - row0, p.width});
  HostInput part;
  part.name = input.name;
  part.interleaved = input.interleaved;
  part.pixels = whole || (first == 0 && last == h) ? px : RowsOf(px, input.interleaved, first, last);
  Tensor image = InputTensor(part);  // float [n, 3, last - first, w]
  if (whole) return image;
  Tensor out = Tensor::Zeros({n, 3, row1 - row0, p.width});
  const int64_t rows = last - first, at_row = first + p.top - row0;
  ParallelFor(0, n * 3 * rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t plane = i / rows, y = i % rows;
      std::memcpy(out.data<float>() + (plane * (row1 - row0) + at_row + y) * p.width + p.left,
                  image.data<float>() + (plane * rows + y) * w, w * sizeof(float));
    }
  });
  return out;
}

}  // namespace

FramePlan ReadFramePlan(const Napi::Value& value, int64_t image_h, int64_t image_w) {
  if (!value.IsObject()) BadPlan("not an object");
  Napi::Object o = value.As<Napi::Object>();
  FramePlan p;
  constexpr int64_t kMaxSide = 1 << 30;
  Napi::Array pad = Array(o.Get("pad"), "pad", 4);
  p.height = Int(pad.Get(0u), "pad[0]", image_h, kMaxSide);
  p.width = Int(pad.Get(1u), "pad[1]", image_w, kMaxSide);
  p.top = Int(pad.Get(2u), "pad[2]", 0, p.height - image_h);
  p.left = Int(pad.Get(3u), "pad[3]", 0, p.width - image_w);
  if (p.height * p.width > std::numeric_limits<int32_t>::max() / 3) BadPlan("the padded frame is too large");
  p.base = Int(o.Get("base"), "base", 0, 30);
  const int64_t base_h = p.height >> p.base;
  Napi::Array rows = Array(o.Get("rows"), "rows", 2);
  p.from = Int(rows.Get(0u), "rows[0]", 0, base_h - 1);
  p.to = Int(rows.Get(1u), "rows[1]", p.from + 1, base_h);
  Napi::Array own = Array(o.Get("own"), "own", 2);
  p.own_from = Int(own.Get(0u), "own[0]", p.from, p.to);
  p.own_to = Int(own.Get(1u), "own[1]", p.own_from, p.to);
  Napi::Array keep = Array(o.Get("keep"), "keep", 0);
  Napi::Array boxes = Array(o.Get("boxes"), "boxes", keep.Length());
  if (keep.Length() == 0 || keep.Length() > 32) BadPlan("keep needs 1 to 32 levels");
  for (uint32_t i = 0; i < keep.Length(); ++i) {
    const std::string at = "keep[" + std::to_string(i) + "]";
    const int64_t level = Int(keep.Get(i), at, i ? p.keep.back() + 1 : p.base, p.base + 30);
    const int64_t lh = p.height >> level, lw = p.width >> level;
    if (lh < 1 || lw < 1) BadPlan(at + " is past the coarsest level");
    p.keep.push_back(level);
    const std::string bn = "boxes[" + std::to_string(i) + "]";
    Napi::Array b = Array(boxes.Get(i), bn, 4);
    LevelBox box{};
    box.top = Int(b.Get(0u), bn + "[0]", 0, lh - 1);
    box.left = Int(b.Get(1u), bn + "[1]", 0, lw - 1);
    box.height = Int(b.Get(2u), bn + "[2]", 1, lh - box.top);
    box.width = Int(b.Get(3u), bn + "[3]", 1, lw - box.left);
    p.boxes.push_back(box);
  }
  // The band must keep a row at its top level, and level 0's rows of it must start on every kept
  // level's pooling grid.
  if (((p.to - p.from) >> (p.top_level() - p.base)) < 1) BadPlan("rows has no row at level " + std::to_string(p.top_level()));
  // Level 0's rows of the band must start on every kept level's pooling grid.
  if (((p.from << p.base) & ((int64_t{1} << p.top_level()) - 1)) != 0) BadPlan("rows[0] is off the pooling grid");
  Napi::Value half = o.Get("half");
  if (!half.IsBoolean()) BadPlan("half is not a boolean");
  p.half = half.As<Napi::Boolean>();
  return p;
}

std::vector<Tensor> RunFrame(const Model& model, const HostInput& input, const FramePlan& p, int threads) {
  const int64_t top = p.top_level();
  const size_t levels = static_cast<size_t>(top - p.base + 1);
  // Level 0's rows under the band: pooling them gives exactly the band's rows of each level above.
  const int64_t row0 = p.from << p.base;
  const int64_t row1 = std::min(p.height, p.to << p.base);
  Tensor level0 = PaddedRows(input, p, row0, row1);
  std::vector<Tensor> features;
  if (p.base == 0 && !model.is_cpu()) {
    features = model.Run({level0}, levels, threads);  // pooled on the device
  } else {
    std::vector<Tensor> pyramid = CpuPyramid(level0, static_cast<size_t>(top + 1));
    level0 = Tensor();
    pyramid.erase(pyramid.begin(), pyramid.begin() + p.base);
    features = model.Run(pyramid, levels, threads);
  }
  if (features.size() < levels) throw UserError(ErrorKind::kError, "the model gave too few levels", code::kRuntime);
  std::vector<Tensor> out;
  out.reserve(p.keep.size());
  for (size_t i = 0; i < p.keep.size(); ++i) {
    const int64_t r = p.keep[i] - p.base;
    const LevelBox& box = p.boxes[i];
    Tensor f = std::move(features[r]);
    features[r] = Tensor();
    const int64_t lo = std::max(p.own_from >> r, box.top);
    const int64_t hi = std::max(lo, std::min(p.own_to >> r, box.top + box.height));
    const int64_t row = lo - (p.from >> r);
    FILM_ERROR_IF(f.dim() != 4 || row + (hi - lo) > f.size(2) || box.left + box.width > f.size(3),
                  "level " + std::to_string(p.keep[i]) + " of the model has another size than its pyramid level");
    out.push_back(CutLevel(f, row, hi - lo, box.left, box.width, p.half));
  }
  return out;
}

Tensor CutLevel(const Tensor& level, int64_t row0, int64_t rows, int64_t left, int64_t width, bool half) {
  const int64_t n = level.size(0), c = level.size(1), h = level.size(2), w = level.size(3);
  if (!half && row0 == 0 && rows == h && left == 0 && width == w) return level;  // the tensor's own memory
  Tensor out = Tensor::Empty({n, c, rows, width}, half ? DType::kFloat16 : DType::kFloat32);
  if (out.numel() == 0) return out;
  const float* src = level.data<float>();
  static const HalfFn to_half = PickHalf();
  char* dst = out.data<char>();
  const size_t elem = half ? 2 : 4;
  ParallelFor(0, n * c * rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* s = src + ((i / rows) * h + row0 + i % rows) * w + left;
      char* d = dst + i * width * elem;
      if (half) {
        to_half(s, reinterpret_cast<uint16_t*>(d), width);
      } else {
        std::memcpy(d, s, width * sizeof(float));
      }
    }
  });
  return out;
}

Napi::Value EncodeLevelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsArray() || !info[2].IsArray() ||
                           !info[3].IsBoolean(),
                       "encodeLevel(data: Float32Array, shape: number[4], box: number[4], half: boolean)");
    Napi::TypedArray data = info[0].As<Napi::TypedArray>();
    FILM_TYPE_ERROR_IF(data.TypedArrayType() != napi_float32_array, "encodeLevel needs a Float32Array");
    Napi::Array shape = Array(info[1], "shape", 4);
    std::array<int64_t, 4> dims{};
    int64_t count = 1;
    for (uint32_t i = 0; i < 4; ++i) {
      dims[i] = Int(shape.Get(i), "shape[" + std::to_string(i) + "]", 1, std::numeric_limits<int32_t>::max());
      FILM_RANGE_ERROR_IF(count > std::numeric_limits<int32_t>::max() / dims[i], "shape is too large");
      count *= dims[i];
    }
    FILM_RANGE_ERROR_IF(static_cast<int64_t>(data.ElementLength()) != count, "data does not match shape");
    Napi::Array b = Array(info[2], "box", 4);
    const int64_t top = Int(b.Get(0u), "box[0]", 0, dims[2] - 1);
    const int64_t left = Int(b.Get(1u), "box[1]", 0, dims[3] - 1);
    const int64_t height = Int(b.Get(2u), "box[2]", 1, dims[2] - top);
    const int64_t width = Int(b.Get(3u), "box[3]", 1, dims[3] - left);
    void* base = nullptr;
    napi_get_typedarray_info(env, data, nullptr, nullptr, &base, nullptr, nullptr);
    FILM_TYPE_ERROR_IF(base == nullptr, "data is detached");
    const bool half = info[3].As<Napi::Boolean>();
    // A view of the caller's array, for this synchronous call only: nothing keeps it.
    Tensor view = Tensor::Wrap(nullptr, base, {dims[0], dims[1], dims[2], dims[3]}, DType::kFloat32);
    Tensor out = CutLevel(view, top, height, left, width, half);
    // A cut that is the whole level in float32 is the caller's own array.
    if (out.data() == base) return data;
    return ToTypedArray(env, out, false);
  });
}

}  // namespace film
