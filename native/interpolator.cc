#include "interpolator.h"

#include <cstring>
#include <utility>
#include <vector>

#include "errors.h"
#include "promise_task.h"
#include "tensor_io.h"

namespace film {
namespace {

// run() flag of the interpolator's own (bound_model.h has the shared ones)
constexpr uint32_t kBytes = 4;  // frames as uint8 [n, h, w, 3] instead of float32 [n, 3, h, w]
// recursion feeds back the padded prediction as it is (RecursionPadding::kPrediction, the port's
// inference.py) instead of the frame padded with zeros again (kZeros, Google's FILM)
constexpr uint32_t kRecursionPrediction = 32;

class RunTask : public Task {
 public:
  RunTask(Napi::Env env, std::shared_ptr<Slot<FilmInterpolator>> slot, std::vector<HostInput> a,
          std::vector<HostInput> b, std::vector<double> times, int recursions, int threads, uint32_t flags)
      : Task(env, threads),
        slot_(std::move(slot)),
        a_(std::move(a)),
        b_(std::move(b)),
        times_(std::move(times)),
        recursions_(recursions),
        flags_(flags) {}

 protected:
  void Run(int threads) override {
    std::shared_ptr<FilmInterpolator> model = slot_->Get();
    if (!model) throw UserError(ErrorKind::kError, Interpolator::kDisposed, code::kDisposed);
    const Tensor x0 = Stack(&a_), x1 = Stack(&b_);
    const RecursionPadding padding = flags_ & kRecursionPrediction ? RecursionPadding::kPrediction : RecursionPadding::kZeros;
    frames_ = model->Run(x0, x1, times_, recursions_, padding, flags_ & kBytes, threads);
  }

  Napi::Value Result(Napi::Env env) override {
    return ToOutputs(env, frames_, flags_ & run_flag::kCopyOutputs, flags_ & run_flag::kWithAddresses);
  }

 private:
  // One batch from the inputs (float32 NCHW each, 8-bit ones converted as the extractor does).
  // The inputs as float32 [n, 3, h, w], one batch (they have one size: ReadList checked it).
  static Tensor Stack(std::vector<HostInput>* inputs) {
    std::vector<Tensor> tensors;
    int64_t n = 0;
    for (const HostInput& input : *inputs) {
      tensors.push_back(InputTensor(input));
      n += tensors.back().size(0);
    }
    inputs->clear();
    if (tensors.size() == 1) return tensors[0];
    Tensor out = Tensor::Empty({n, 3, tensors[0].size(2), tensors[0].size(3)});
    char* at = out.data<char>();
    for (const Tensor& t : tensors) {
      std::memcpy(at, t.data(), t.nbytes());
      at += t.nbytes();
    }
    return out;
  }

  std::shared_ptr<Slot<FilmInterpolator>> slot_;
  std::vector<HostInput> a_, b_;
  std::vector<double> times_;
  int recursions_;
  uint32_t flags_;
  std::vector<Tensor> frames_;
};

// [h, w] of an input as ReadInput stored it.
std::pair<int64_t, int64_t> Size(const HostInput& input) {
  const Tensor& p = input.pixels;
  return input.interleaved ? std::make_pair(p.size(1), p.size(2)) : std::make_pair(p.size(2), p.size(3));
}

std::vector<HostInput> ReadList(const Napi::Value& value, const char* name) {
  FILM_TYPE_ERROR_IF(!value.IsArray(), std::string("Expected an array of inputs for ") + name);
  Napi::Array list = value.As<Napi::Array>();
  FILM_RANGE_ERROR_IF(list.Length() == 0, std::string("Expected at least one input in ") + name);
  std::vector<HostInput> inputs;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    inputs.push_back(ReadInput(list.Get(i), list.Length() == 1 ? name : std::string(name) + "[" + std::to_string(i) + "]"));
    FILM_RANGE_ERROR_IF(Size(inputs[i]) != Size(inputs[0]), std::string(name) + "[" + std::to_string(i) +
                                                                 "] is not the size of " + name + "[0]");
  }
  return inputs;
}

int64_t Count(const std::vector<HostInput>& inputs) {
  int64_t n = 0;
  for (const HostInput& input : inputs) n += input.pixels.size(0);
  return n;
}

}  // namespace

Napi::Value Interpolator::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    std::shared_ptr<FilmInterpolator> model = Live();
    FILM_TYPE_ERROR_IF(info.Length() < 4 || !info[2].IsArray() || !info[3].IsNumber(),
                       "run(a: input[], b: input[], times: number[], recursions: number, threads?: number, "
                       "flags?: number)");
    std::vector<HostInput> a = ReadList(info[0], "a");
    std::vector<HostInput> b = ReadList(info[1], "b");
    FILM_RANGE_ERROR_IF(Size(a[0]) != Size(b[0]), "a and b must be frames of one size: a is " +
                                                      std::to_string(Size(a[0]).second) + "x" +
                                                      std::to_string(Size(a[0]).first) + ", b is " +
                                                      std::to_string(Size(b[0]).second) + "x" +
                                                      std::to_string(Size(b[0]).first));
    FILM_RANGE_ERROR_IF(Count(a) != Count(b), "a has " + std::to_string(Count(a)) + " frames but b has " +
                                                  std::to_string(Count(b)));
    Napi::Array list = info[2].As<Napi::Array>();
    std::vector<double> times;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value t = list.Get(i);
      FILM_TYPE_ERROR_IF(!t.IsNumber(), "Expected numbers in times");
      const double v = t.As<Napi::Number>().DoubleValue();
      FILM_RANGE_ERROR_IF(!(v >= 0 && v <= 1), "Expected times between 0 and 1");
      times.push_back(v);
    }
    const double recursions = info[3].As<Napi::Number>().DoubleValue();
    FILM_RANGE_ERROR_IF(!(recursions >= 0 && recursions <= 16 && recursions == static_cast<int>(recursions)),
                        "Expected an integer recursions from 0 to 16");
    FILM_RANGE_ERROR_IF(recursions == 0 && times.empty(), "Expected at least one time, or recursions > 0");
    const int want = WantThreads(*model, OptionalNumber(info, 4, 0));
    const uint32_t flags = static_cast<uint32_t>(OptionalNumber(info, 5, 0));
    FILM_RANGE_ERROR_IF((flags & kRecursionPrediction) && recursions == 0,
                        "The recursion padding flag takes recursions > 0");
    model.reset();
    return Submit(env, std::make_shared<RunTask>(env, slot_, std::move(a), std::move(b), std::move(times),
                                                 static_cast<int>(recursions), want, flags));
  });
}

Napi::Value Interpolator::InfoOf(Napi::Env env, const InterpolatorInfo& info) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("format", info.format);
  out.Set("dtype", info.dtype);
  out.Set("engine", info.engine);
  out.Set("optimized", info.optimized);
  out.Set("codeRun", info.code_run);
  out.Set("levels", Napi::Number::New(env, info.levels));
  out.Set("precision", info.precision);
  if (info.dt_rank) {
    out.Set("dtShape", DtShapeName(info.dt_rank));
  } else {
    out.Set("dtShape", env.Null());
  }
  return out;
}

void Interpolator::ReadMoreLoadOptions(const Napi::CallbackInfo& info, LoadOptions* options) {
  FILM_TYPE_ERROR_IF(info.Length() < 6 || !info[4].IsString() || !info[5].IsObject(),
                     "loadInterpolator(path, device, threads, half, engine, weights, precision?)");
  options->engine = info[4].As<Napi::String>();
  FILM_TYPE_ERROR_IF(info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsString(), "precision must be a string");
  if (info.Length() > 6 && info[6].IsString()) options->precision = info[6].As<Napi::String>();
  // {format, dtype, levels, tensors: {name: {data: Float32Array, shape: number[]}}}: as lib/model-file
  // read them; here only what keeps the copies in bounds (the engine checks names and shapes).
  Napi::Object w = info[5].As<Napi::Object>();
  Napi::Value format = w.Get("format"), dtype = w.Get("dtype"), levels = w.Get("levels"), tensors = w.Get("tensors");
  FILM_TYPE_ERROR_IF(!format.IsString() || !dtype.IsString() || !levels.IsNumber() || !tensors.IsObject(),
                     "invalid binding input weights: {format, dtype, levels, tensors}");
  options->film.format = format.As<Napi::String>();
  options->film.dtype = dtype.As<Napi::String>();
  const double depth = levels.As<Napi::Number>().DoubleValue();
  FILM_RANGE_ERROR_IF(!(depth >= 1 && depth <= 16 && depth == static_cast<int>(depth)), "invalid binding input weights.levels");
  options->film.levels = static_cast<int>(depth);
  Napi::Object map = tensors.As<Napi::Object>();
  Napi::Array names = map.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string name = names.Get(i).As<Napi::String>();
    Napi::Value t = map.Get(name);
    FILM_TYPE_ERROR_IF(!t.IsObject(), "invalid binding input weights.tensors['" + name + "']");
    Napi::Value data = t.As<Napi::Object>().Get("data"), shape = t.As<Napi::Object>().Get("shape");
    FILM_TYPE_ERROR_IF(!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
                           !shape.IsArray() || shape.As<Napi::Array>().Length() > 8,
                       "invalid binding input weights.tensors['" + name + "']: not {data: Float32Array, shape}");
    std::vector<int64_t> dims;
    int64_t count = 1;
    for (uint32_t d = 0; d < shape.As<Napi::Array>().Length(); ++d) {
      Napi::Value v = shape.As<Napi::Array>().Get(d);
      const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      FILM_RANGE_ERROR_IF(!(x >= 0 && x <= (1 << 30) && x == static_cast<int64_t>(x)) || (x > 0 && count > (int64_t{1} << 40) / x),
                          "invalid binding input weights.tensors['" + name + "'].shape");
      dims.push_back(static_cast<int64_t>(x));
      count *= static_cast<int64_t>(x);
    }
    Napi::Float32Array array = data.As<Napi::Float32Array>();
    FILM_RANGE_ERROR_IF(static_cast<int64_t>(array.ElementLength()) != count,
                        "invalid binding input weights.tensors['" + name + "']: data does not match its shape");
    Tensor copy = Tensor::Empty(dims);
    if (copy.nbytes()) std::memcpy(copy.data(), array.Data(), copy.nbytes());
    options->film.tensors.emplace(name, std::move(copy));
  }
}

}  // namespace film
