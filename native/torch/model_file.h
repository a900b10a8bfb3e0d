// Opening a model file before libtorch sees it: libtorch would read a path up to a NUL byte, block
// for ever on a FIFO, and report a missing file in its own words.
#pragma once

#include <torch/script.h>

#include <string>

namespace film {

// The TorchScript module in the file at path, on the CPU: read by ReadModelFile below, then parsed
// from memory; extra: files of the archive to read as well. Anything libtorch cannot parse is a
// UserError "cannot load '<path>' as TorchScript: <libtorch's first line>".
torch::jit::Module LoadScriptFile(const std::string& path, torch::jit::ExtraFilesMap* extra = nullptr);

// The first line of text.
std::string FirstLine(const std::string& text);

// The whole file's bytes; throws UserError (TypeError for a NUL byte, else ERR_FILM_MODEL_FILE)
// naming the path when it is not a readable regular file.
std::string ReadModelFile(const std::string& path);

}  // namespace film

