#include "errors.h"

#include <c10/util/Exception.h>

namespace film {

std::string DescribeCurrentException(ErrorKind* kind) {
  *kind = ErrorKind::kError;
  try {
    throw;
  } catch (const UserError& e) {
    *kind = e.kind();
    return e.what();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::exception& e) {
    // Some libtorch load failures (torch::jit::IRAttributeError, ...) are not c10::Errors.
    return e.what();
  } catch (...) {
    return "unknown native error";
  }
}

Napi::Error MakeError(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::kTypeError:
      return Napi::TypeError::New(env, message);
    case ErrorKind::kRangeError:
      return Napi::RangeError::New(env, message);
    default:
      return Napi::Error::New(env, message);
  }
}

void PromiseWorker::Execute() {
  try {
    Run();
  } catch (...) {
    SetError(DescribeCurrentException(&kind_));
  }
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  try {
    deferred_.Resolve(Result());
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    ErrorKind kind = ErrorKind::kError;
    std::string message = DescribeCurrentException(&kind);
    deferred_.Reject(MakeError(env, kind, message).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& error) {
  deferred_.Reject(MakeError(Env(), kind_, error.Message()).Value());
}

}  // namespace film
