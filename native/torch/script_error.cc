#include "script_error.h"

#include <c10/util/Exception.h>

#include <new>

namespace film {
namespace {

bool Has(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

std::string LikelyCause(const std::string& what) {
  if (Has(what, "out of memory") || Has(what, "can't allocate") || Has(what, "not enough memory")) {
    return "not enough memory for frames this size";
  }
  if (Has(what, "same device") || Has(what, "device type")) return "its code makes tensors on another device";
  if (Has(what, "scalar type") || Has(what, "Half") || Has(what, "dtype")) {
    return "its code expects another dtype (float16 vs float32)";
  }
  if (Has(what, "dimension") || Has(what, "size of tensor") || Has(what, "shape") || Has(what, "sizes")) {
    return "its code expects inputs of another shape (frame size or batch)";
  }
  return "its code fails on these inputs; try the same call in Python";
}

}  // namespace

std::string ScriptFailureLine(const std::string& what) {
  size_t end = what.find_last_not_of(" \n\r\t");
  if (end == std::string::npos) return "unknown error";
  size_t begin = what.rfind('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return what.substr(begin, end + 1 - begin);
}

void RethrowAsScriptFailure(const std::string& path, const std::string& during) {
  std::string what;
  try {
    throw;
  } catch (const UserError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const c10::OutOfMemoryError&) {
    throw;  // not the file's fault: said as it is
  } catch (const c10::Error& e) {
    what = e.what_without_backtrace();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown native error";
  }
  UserError error(ErrorKind::kError, "'" + path + "' failed " + during + ": " + ScriptFailureLine(what) +
                                         " (likely cause: " + LikelyCause(what) + "; the full trace is on err.cause)",
                  code::kRuntime);
  error.set_detail(what);
  throw error;
}

}  // namespace film
