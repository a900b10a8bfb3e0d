// The one exception boundary of the addon: every entry point and task turns C++ failures
// (film::UserError, c10::Error, std::exception, anything else) into a JS error of the right class,
// with a Node-style `code`.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace film {

enum class ErrorKind { kError, kTypeError, kRangeError };

// Codes, as Node names its own (err.code).
namespace code {
constexpr const char* kInvalidArgType = "ERR_INVALID_ARG_TYPE";
constexpr const char* kInvalidArgValue = "ERR_INVALID_ARG_VALUE";
constexpr const char* kOutOfRange = "ERR_OUT_OF_RANGE";
constexpr const char* kDisposed = "ERR_FILM_DISPOSED";
constexpr const char* kModelFile = "ERR_FILM_MODEL_FILE";      // missing, unreadable, not a regular file
constexpr const char* kModelFormat = "ERR_FILM_MODEL_FORMAT";  // readable, but not a FILM extractor
constexpr const char* kDevice = "ERR_FILM_DEVICE";
constexpr const char* kPrecision = "ERR_FILM_PRECISION";  // precision 'bf16' where this CPU/build cannot run it
constexpr const char* kOutOfMemory = "ERR_FILM_OUT_OF_MEMORY";
constexpr const char* kRuntime = "ERR_FILM_RUNTIME";  // libtorch failed inside a run
constexpr const char* kNeedsLibtorch = "ERR_FILM_NEEDS_LIBTORCH";  // the core build, for what only libtorch runs
constexpr const char* kAborted = "ABORT_ERR";
}  // namespace code

// A failure the caller can act on; its kind picks the JS class, its code goes to err.code.
class UserError : public std::runtime_error {
 public:
  UserError(ErrorKind kind, const std::string& message, const char* code = nullptr)
      : std::runtime_error(message), kind_(kind), code_(code ? code : DefaultCode(kind)) {}
  ErrorKind kind() const { return kind_; }
  const char* code() const { return code_; }
  // Text too long for the message (a TorchScript trace): becomes err.cause.
  const std::string& detail() const { return detail_; }
  void set_detail(std::string detail) { detail_ = std::move(detail); }

 private:
  static const char* DefaultCode(ErrorKind kind) {
    return kind == ErrorKind::kTypeError    ? code::kInvalidArgType
           : kind == ErrorKind::kRangeError ? code::kOutOfRange
                                            : code::kRuntime;
  }
  ErrorKind kind_;
  const char* code_;
  std::string detail_;
};

#define FILM_TYPE_ERROR_IF(cond, msg) \
  if (cond) throw ::film::UserError(::film::ErrorKind::kTypeError, (msg))
#define FILM_RANGE_ERROR_IF(cond, msg) \
  if (cond) throw ::film::UserError(::film::ErrorKind::kRangeError, (msg))
#define FILM_ERROR_IF(cond, msg) \
  if (cond) throw ::film::UserError(::film::ErrorKind::kError, (msg))

// An error captured off the JS thread, to be turned into a JS error on it.
struct ErrorInfo {
  ErrorKind kind = ErrorKind::kError;
  std::string code = code::kRuntime;
  std::string message;
  std::string detail;  // when set: err.cause, an Error with this message
};

// Call only inside a catch block: describes the exception in flight.
ErrorInfo DescribeCurrentException();
// The same, as message and kind.
std::string DescribeCurrentException(ErrorKind* kind);

// The JS error for info; never throws (falls back to a plain Error).
napi_value MakeError(napi_env env, const ErrorInfo& info);

// A JS error from a failed N-API call (Napi::Error) has no code: gives it ERR_FILM_RUNTIME.
void EnsureCode(const Napi::Error& error);

// Runs fn; whatever it throws that is not already a JS exception becomes one, and every error
// leaving it has a code.
template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error& e) {
    EnsureCode(e);
    throw;
  } catch (...) {
    const ErrorInfo info = DescribeCurrentException();
    napi_value error = MakeError(env, info);
    if (!error) throw Napi::Error::New(env, info.message);
    throw Napi::Error(env, error);
  }
}

}  // namespace film
