#include "errors.h"

#include <new>

#include "backend.h"

namespace film {

ErrorInfo DescribeCurrentException() {
  ErrorInfo info;
  try {
    throw;
  } catch (const UserError& e) {
    info.kind = e.kind();
    info.code = e.code();
    info.message = e.what();
    info.detail = e.detail();
  } catch (const std::bad_alloc&) {
    info.code = code::kOutOfMemory;
    info.message = "out of memory";
  } catch (...) {
    // libtorch's own (c10::Error, its out of memory) are told apart by the backend, which rethrows.
    if (!backend::DescribeTorchException(&info)) {
      try {
        throw;
      } catch (const std::exception& e) {
        info.message = e.what();
      } catch (...) {
        info.message = "unknown native error";
      }
    }
  }
  return info;
}

std::string DescribeCurrentException(ErrorKind* kind) {
  ErrorInfo info = DescribeCurrentException();
  *kind = info.kind;
  return info.message;
}

void EnsureCode(const Napi::Error& error) {
  Napi::Value value = error.Value();
  if (value.IsEmpty() || !value.IsObject()) return;
  Napi::Object object = value.As<Napi::Object>();
  bool has = false;
  if (napi_has_named_property(object.Env(), object, "code", &has) == napi_ok && !has) {
    napi_value code = nullptr;
    if (napi_create_string_utf8(object.Env(), code::kRuntime, NAPI_AUTO_LENGTH, &code) == napi_ok) {
      napi_set_named_property(object.Env(), object, "code", code);
    }
  }
}

napi_value MakeError(napi_env env, const ErrorInfo& info) {
  napi_value message = nullptr;
  napi_value code = nullptr;
  napi_value error = nullptr;
  if (napi_create_string_utf8(env, info.message.data(), info.message.size(), &message) != napi_ok ||
      napi_create_string_utf8(env, info.code.data(), info.code.size(), &code) != napi_ok) {
    return nullptr;
  }
  switch (info.kind) {
    case ErrorKind::kTypeError:
      napi_create_type_error(env, code, message, &error);
      break;
    case ErrorKind::kRangeError:
      napi_create_range_error(env, code, message, &error);
      break;
    default:
      napi_create_error(env, code, message, &error);
  }
  napi_value cause = nullptr;
  napi_value detail = nullptr;
  if (error && !info.detail.empty() &&
      napi_create_string_utf8(env, info.detail.data(), info.detail.size(), &detail) == napi_ok &&
      napi_create_error(env, nullptr, detail, &cause) == napi_ok) {
    napi_set_named_property(env, error, "cause", cause);
  }
  return error;
}

}  // namespace film
