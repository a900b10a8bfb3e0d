// The one exception boundary of the addon: every entry point and worker turns C++ failures
// (film::UserError, c10::Error, std::exception, anything else) into a JS error of the right class.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace film {

enum class ErrorKind { kError, kTypeError, kRangeError };

// A failure the caller can act on; its kind picks the JS class.
class UserError : public std::runtime_error {
 public:
  UserError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

#define FILM_TYPE_ERROR_IF(cond, msg) \
  if (cond) throw ::film::UserError(::film::ErrorKind::kTypeError, (msg))
#define FILM_RANGE_ERROR_IF(cond, msg) \
  if (cond) throw ::film::UserError(::film::ErrorKind::kRangeError, (msg))
#define FILM_ERROR_IF(cond, msg) \
  if (cond) throw ::film::UserError(::film::ErrorKind::kError, (msg))

// Call only inside a catch block: names the exception in flight and its JS class.
std::string DescribeCurrentException(ErrorKind* kind);

Napi::Error MakeError(Napi::Env env, ErrorKind kind, const std::string& message);

// Runs fn; whatever it throws that is not already a JS exception becomes one.
template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    ErrorKind kind = ErrorKind::kError;
    std::string message = DescribeCurrentException(&kind);
    throw MakeError(env, kind, message);
  }
}

// An AsyncWorker that settles a Promise. Execute() runs Run() on a pool thread and never
// touches JS; Result() builds the value on the main thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result() = 0;

 private:
  void Execute() final;
  void OnOK() final;
  void OnError(const Napi::Error& error) final;

  Napi::Promise::Deferred deferred_;
  ErrorKind kind_ = ErrorKind::kError;
};

}  // namespace film
