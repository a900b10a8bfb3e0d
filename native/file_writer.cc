#include "file_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include "errors.h"
#include "promise_task.h"
#include "tagged_external.h"
#include "rename.h"
#include "sys_error.h"

namespace film {
namespace {

// Tells our Externals from any other (a model handoff, another addon's): never cast what is not ours.
constexpr napi_type_tag kHeldLevelsTag = TypeTagOf("held levels");

using HeldLevels = std::vector<Tensor>;  // touched on the JS thread only

HeldLevels& ReadHeld(const Napi::Value& value) {
  return *TaggedExternalData<HeldLevels>(value, kHeldLevelsTag, "levels must be the levels a frame run held");
}

// Closes on every path out; Close() reports the close's own failure (a deferred write error).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int Close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

using Part = std::variant<std::string, Tensor>;  // bytes copied from JS, or a held level

struct FileSpec {
  std::string name;
  std::vector<Part> parts;
};

// Writes all of data; a short write (a full disk) is resumed, and then fails with the reason.
void WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  // Pieces of 512 KiB, as Node's writeFile: one write(2) of tens of MiB while the cores are busy
  // with extracts ran ~10x slower here (2 vCPUs, ext4: 180 ms against 18 ms for 70 MiB).
  constexpr size_t kPiece = size_t{512} << 10;
  while (size > 0) {
    const ssize_t n = ::write(fd, data, std::min(size, kPiece));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ThrowErrno(n < 0 ? errno : EIO, "write", path);
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void Flush(int fd, const std::string& path) {
  if (::fsync(fd) != 0) ThrowErrno(errno, "fsync", path);
}

class WriteFilesTask : public Task {
 public:
  WriteFilesTask(Napi::Env env, std::string dir, bool make_dir, std::vector<FileSpec> files, bool fsync,
                 std::string place_at)
      : Task(env, 1),
        dir_(std::move(dir)),
        make_dir_(make_dir),
        files_(std::move(files)),
        fsync_(fsync),
        place_at_(std::move(place_at)) {
    on_io_thread_ = true;
  }

 protected:
  void Run(int /*threads*/) override {
    // (the folders above it are the caller's: lib/batch/place.ts makeFolders is the one mkdir -p)
    if (make_dir_ && ::mkdir(dir_.c_str(), 0777) != 0) ThrowErrno(errno, "mkdir", dir_);
    for (FileSpec& file : files_) {
      const std::string path = dir_ + "/" + file.name;
      Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
      if (fd.get() < 0) ThrowErrno(errno, "open", path);
      for (Part& part : file.parts) {
        if (auto* bytes = std::get_if<std::string>(&part)) {
          WriteAll(fd.get(), bytes->data(), bytes->size(), path);
          bytes_ += static_cast<int64_t>(bytes->size());
        } else {
          Tensor& level = std::get<Tensor>(part);
          WriteAll(fd.get(), level.data<const char>(), level.nbytes(), path);
          bytes_ += static_cast<int64_t>(level.nbytes());
        }
        part = std::string();  // freed as soon as written, here rather than on the JS thread
      }
      if (fsync_) Flush(fd.get(), path);
      if (fd.Close() != 0 && errno != EINTR) ThrowErrno(errno, "close", path);
    }
    if (fsync_) {
      Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir.get() < 0) ThrowErrno(errno, "open", dir_);
      Flush(dir.get(), dir_);
    }
    files_.clear();
    if (!place_at_.empty()) Place();
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
    out.Set("placed", Napi::Boolean::New(env, placed_));
    if (!sync_error_.empty()) out.Set("syncError", Napi::String::New(env, sync_error_));
    return out;
  }

 private:
  std::string dir_;
  bool make_dir_;
  std::vector<FileSpec> files_;
  bool fsync_;
  std::string place_at_;
  int64_t bytes_ = 0;
  bool placed_ = false;
  std::string sync_error_;  // the parent's fsync failed after the rename

  // dir renamed to place_at only where nothing is there, not even an empty folder (a plain rename
  // would replace one): the first step of the placement rule (lib/batch/place.ts), here to save a
  // wake-up. Anything there (or a file system that cannot) leaves placed_ false: place() decides.
  // Once placed, the output is complete: a failed fsync of its parent is reported, not thrown.
  void Place() {
    try {
      if (!RenameAt(dir_, place_at_, RenameMode::kNoReplace)) return;
    } catch (const UserError&) {
      return;  // EEXIST, ENOTEMPTY, ...: place() looks at what is there
    }
    placed_ = true;
    if (!fsync_) return;
    const size_t slash = place_at_.rfind('/');
    const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : place_at_.substr(0, slash);
    try {
      Fd fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (fd.get() < 0) ThrowErrno(errno, "open", parent);
      Flush(fd.get(), parent);
    } catch (const UserError& e) {
      sync_error_ = e.what();
    }
  }
};

// A plain file name: the files of one folder, never a path.
bool PlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

Napi::Value ToHeldLevels(Napi::Env env, std::vector<Tensor>& tensors) {
  auto* held = new HeldLevels();
  Napi::External<HeldLevels> levels = NewTaggedExternal(env, std::unique_ptr<HeldLevels>(held), kHeldLevelsTag);
  Napi::Array shapes = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Tensor t = tensors[i];
    Napi::Array shape = Napi::Array::New(env, t.dim());
    for (int64_t d = 0; d < t.dim(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, t.size(d)));
    shapes.Set(static_cast<uint32_t>(i), shape);
    held->push_back(std::move(t));
  }
  tensors.clear();
  Napi::Object out = Napi::Object::New(env);
  out.Set("shapes", shapes);
  out.Set("levels", levels);
  return out;
}

Napi::Value WriteFilesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() < 5 || !info[0].IsString() || !info[1].IsBoolean() || !info[2].IsArray() ||
                           !info[4].IsBoolean() || (info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsString()),
                       "writeFiles(dir: string, makeDir: boolean, files: {name, parts}[], levels, fsync: boolean, placeAt?: string)");
    std::string dir = info[0].As<Napi::String>();
    FILM_TYPE_ERROR_IF(dir.empty() || dir.find('\0') != std::string::npos, "dir must be a path without null bytes");
    std::string place_at = info.Length() > 5 && info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "";
    FILM_TYPE_ERROR_IF(place_at.find('\0') != std::string::npos, "placeAt must be a path without null bytes");
    HeldLevels* held = info[3].IsNull() || info[3].IsUndefined() ? nullptr : &ReadHeld(info[3]);
    Napi::Array list = info[2].As<Napi::Array>();
    // Everything is read and checked first; only then are held levels taken, so that a call that
    // throws uses none up.
    std::vector<FileSpec> files;
    std::vector<Napi::Array> part_lists;
    std::vector<std::pair<Tensor*, Part*>> takes;  // (held level, the part it goes to)
    files.reserve(list.Length());
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value item = list.Get(i);
      FILM_TYPE_ERROR_IF(!item.IsObject(), "files[" + std::to_string(i) + "] must be {name, parts}");
      Napi::Value name = item.As<Napi::Object>().Get("name");
      Napi::Value parts = item.As<Napi::Object>().Get("parts");
      FILM_TYPE_ERROR_IF(!name.IsString() || !PlainName(name.As<Napi::String>()) || !parts.IsArray(),
                         "files[" + std::to_string(i) + "] must be {name: a plain file name, parts: array}");
      files.push_back(FileSpec{name.As<Napi::String>(), {}});
      part_lists.push_back(parts.As<Napi::Array>());
    }
    for (size_t i = 0; i < files.size(); ++i) {
      const Napi::Array& ps = part_lists[i];
      const uint32_t count = ps.Length();
      files[i].parts.reserve(count);  // never grown past: `takes` points into it
      for (uint32_t j = 0; j < count; ++j) {
        Napi::Value p = ps.Get(j);
        if (p.IsTypedArray() && p.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
          Napi::Uint8Array bytes = p.As<Napi::Uint8Array>();
          files[i].parts.emplace_back(std::string(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength()));
          continue;
        }
        FILM_TYPE_ERROR_IF(!p.IsNumber() || held == nullptr, "a part must be a Uint8Array or the index of a held level");
        const double index = p.As<Napi::Number>().DoubleValue();
        FILM_RANGE_ERROR_IF(!(index >= 0 && index < static_cast<double>(held->size()) && index == static_cast<size_t>(index)),
                            "no held level " + std::to_string(index));
        Tensor& level = (*held)[static_cast<size_t>(index)];
        FILM_ERROR_IF(!level.defined(), "held level " + std::to_string(static_cast<size_t>(index)) + " was written or released");
        for (const auto& take : takes) {
          FILM_ERROR_IF(take.first == &level, "held level " + std::to_string(static_cast<size_t>(index)) + " is given twice");
        }
        files[i].parts.emplace_back(Tensor());
        takes.emplace_back(&level, &files[i].parts.back());
      }
    }
    // (reading the parts ran no code of ours, but could have run a getter: check again)
    for (const auto& take : takes) FILM_ERROR_IF(!take.first->defined(), "a held level was released meanwhile");
    for (auto& take : takes) *take.second = std::exchange(*take.first, Tensor());
    return Task::Submit(env, std::make_shared<WriteFilesTask>(env, std::move(dir), info[1].As<Napi::Boolean>(),
                                                             std::move(files), info[4].As<Napi::Boolean>(),
                                                             std::move(place_at)));
  });
}

Napi::Value ReleaseLevelsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() < 1, "releaseLevels(levels)");
    for (Tensor& level : ReadHeld(info[0])) level = Tensor();
    return env.Undefined();
  });
}

}  // namespace film
