#include "interpolator.h"

#include <utility>
#include <vector>

#include "aten_tensor.h"
#include "errors.h"
#include "promise_task.h"
#include "tensor_io.h"

namespace film {
namespace {

// run() flag of the interpolator's own (bound_model.h has the shared ones)
constexpr uint32_t kBytes = 4;  // frames as uint8 [n, h, w, 3] instead of float32 [n, 3, h, w]

class RunTask : public Task {
 public:
  RunTask(Napi::Env env, std::shared_ptr<Slot<InterpolatorModel>> slot, std::vector<HostInput> a,
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
    std::shared_ptr<InterpolatorModel> model = slot_->Get();
    if (!model) throw UserError(ErrorKind::kError, Interpolator::kDisposed, code::kDisposed);
    const at::Tensor x0 = Stack(&a_), x1 = Stack(&b_);
    for (at::Tensor& frame : model->Run(x0, x1, times_, recursions_, flags_ & kBytes, threads)) {
      frames_.push_back(FromAten(std::move(frame)));
    }
  }

  Napi::Value Result(Napi::Env env) override {
    return ToOutputs(env, frames_, flags_ & run_flag::kCopyOutputs, flags_ & run_flag::kWithAddresses);
  }

 private:
  // One batch from the inputs (float32 NCHW each, 8-bit ones converted as the extractor does).
  static at::Tensor Stack(std::vector<HostInput>* inputs) {
    std::vector<at::Tensor> tensors;
    for (const HostInput& input : *inputs) tensors.push_back(ToAten(InputTensor(input)));
    inputs->clear();
    return tensors.size() == 1 ? tensors[0] : at::cat(tensors, 0);
  }

  std::shared_ptr<Slot<InterpolatorModel>> slot_;
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
    std::shared_ptr<InterpolatorModel> model = Live();
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
    model.reset();
    return Submit(env, std::make_shared<RunTask>(env, slot_, std::move(a), std::move(b), std::move(times),
                                                 static_cast<int>(recursions), want, flags));
  });
}

Napi::Value Interpolator::InfoOf(Napi::Env env, const InterpolatorInfo& info) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("dtype", info.dtype);
  out.Set("optimized", info.optimized);
  out.Set("dtShape", DtShapeName(info.dt_rank));
  return out;
}

}  // namespace film
