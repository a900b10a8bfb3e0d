// Opening a model file before libtorch sees it: libtorch would read a path up to a NUL byte, block
// for ever on a FIFO, and report a missing file in its own words.
#pragma once

#include <string>

namespace film {

// The whole file's bytes; throws UserError (TypeError for a NUL byte, else ERR_FILM_MODEL_FILE)
// naming the path when it is not a readable regular file.
std::string ReadModelFile(const std::string& path);

}  // namespace film

#include <streambuf>

namespace film {

// A seekable read-only stream buffer over bytes held elsewhere (no copy), for torch::jit::load.
class BytesStreamBuf : public std::streambuf {
 public:
  explicit BytesStreamBuf(std::string& bytes) { setg(&bytes[0], &bytes[0], &bytes[0] + bytes.size()); }

 protected:
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode which) override;
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override;
};

}  // namespace film
