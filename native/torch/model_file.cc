#include "model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <istream>
#include <streambuf>

#include "errors.h"

namespace film {
namespace {

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

// A seekable read-only stream buffer over bytes held elsewhere (no copy), for torch::jit::load.
class BytesStreamBuf : public std::streambuf {
 public:
  explicit BytesStreamBuf(std::string& bytes) { setg(&bytes[0], &bytes[0], &bytes[0] + bytes.size()); }

 protected:
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode which) override {
    const off_type base = dir == std::ios_base::beg ? 0 : dir == std::ios_base::cur ? gptr() - eback() : egptr() - eback();
    return seekpos(pos_type(base + off), which);
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override {
    const off_type at = off_type(pos);
    if (!(which & std::ios_base::in) || at < 0 || at > egptr() - eback()) return pos_type(off_type(-1));
    setg(eback(), eback() + at, egptr());
    return pos;
  }
};

[[noreturn]] void Fail(const std::string& path, const std::string& why) {
  throw UserError(ErrorKind::kError, "cannot load model '" + path + "': " + why, code::kModelFile);
}

}  // namespace

std::string FirstLine(const std::string& text) {
  const auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

torch::jit::Module LoadScriptFile(const std::string& path, torch::jit::ExtraFilesMap* extra) {
  std::string bytes = ReadModelFile(path);
  torch::jit::ExtraFilesMap none;
  try {
    BytesStreamBuf buffer(bytes);
    std::istream stream(&buffer);
    return torch::jit::load(stream, c10::Device(c10::kCPU), extra ? *extra : none);
  } catch (...) {
    ErrorKind kind;
    throw UserError(ErrorKind::kError,
                    "cannot load '" + path + "' as TorchScript: " + FirstLine(DescribeCurrentException(&kind)));
  }
}

std::string ReadModelFile(const std::string& path) {
  if (path.find('\0') != std::string::npos) {
    throw UserError(ErrorKind::kTypeError, "The model path must be a string without null bytes",
                    code::kInvalidArgValue);
  }
  // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    Fail(path, err == ENOENT ? "no such file" : std::strerror(err));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) Fail(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) Fail(path, std::string("it is ") + FileKind(st.st_mode) + ", not a regular file");
  // Checked on the descriptor that is read, so the file cannot be swapped in between.
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = read(fd, &bytes[done], bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail(path, std::strerror(errno));
    if (n == 0) break;  // shrank while reading
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace film
