#include "sys_error.h"

#include <cerrno>
#include <cstring>

#include "errors.h"

namespace film {
namespace {

// Node's name for an errno (err.code), for those a file write or rename can meet; null for any other.
const char* ErrnoName(int error) {
  switch (error) {
#define FILM_ERRNO(e) \
  case e:             \
    return #e;
    FILM_ERRNO(EACCES) FILM_ERRNO(EBADF) FILM_ERRNO(EBUSY) FILM_ERRNO(EDQUOT) FILM_ERRNO(EEXIST) FILM_ERRNO(EFBIG)
    FILM_ERRNO(EINTR) FILM_ERRNO(EINVAL) FILM_ERRNO(EIO) FILM_ERRNO(EISDIR) FILM_ERRNO(ELOOP) FILM_ERRNO(EMFILE)
    FILM_ERRNO(EMLINK) FILM_ERRNO(ENAMETOOLONG) FILM_ERRNO(ENFILE) FILM_ERRNO(ENOENT) FILM_ERRNO(ENOMEM)
    FILM_ERRNO(ENOSPC) FILM_ERRNO(ENOSYS) FILM_ERRNO(ENOTDIR) FILM_ERRNO(ENOTEMPTY) FILM_ERRNO(ENXIO)
    FILM_ERRNO(EOPNOTSUPP) FILM_ERRNO(EPERM) FILM_ERRNO(EROFS) FILM_ERRNO(ESTALE) FILM_ERRNO(ETXTBSY) FILM_ERRNO(EXDEV)
#undef FILM_ERRNO
    default:
      return nullptr;
  }
}

}  // namespace

void ThrowErrno(int error, const char* call, const std::string& path) {
  const char* name = ErrnoName(error);
  throw UserError(ErrorKind::kError,
                  std::string(name ? name : "E" + std::to_string(error)) + ": " + std::strerror(error) + ", " + call +
                      " '" + path + "'",
                  name ? name : code::kRuntime);
}

}  // namespace film
