// The batch writer's files, written off the JS thread: a frame run's kept levels are held natively
// until then (they never become JS memory), and a folder's files are written in one task on the
// I/O thread (io_thread.h), so the JS thread neither copies levels out in pieces, nor collects
// garbage for them, nor wakes for each open, write and close.
#pragma once

#include <napi.h>

#include "tensor.h"

#include <vector>

namespace film {

// {shapes: number[][], levels}: `levels` (an opaque, type-tagged External) takes the tensors.
Napi::Value ToHeldLevels(Napi::Env env, std::vector<Tensor>& tensors);

// writeFiles(dir, makeDir, files: {name, parts: (Uint8Array | number)[]}[], levels, fsync, placeAt?)
//   -> Promise<{bytes, placed}>.
// On the I/O thread: makes dir (when makeDir; it must not exist, the folder above it must), then
// creates each file (it must
// not exist), writes its parts in order (a Uint8Array is copied now, on the JS thread; a number
// is that held level, taken now and freed once written; each level is written once), flushes it to
// the disk with fsync, and closes it; with fsync the folder is flushed last. With placeAt, dir is
// then renamed to it if nothing at all is there (renameat2 RENAME_NOREPLACE): `placed` says whether
// it was; if not, dir stays for the caller. Failures reject with Node's codes (EEXIST, ENOSPC, ...);
// what was written stays for the caller to remove.
Napi::Value WriteFilesJs(const Napi::CallbackInfo& info);

// releaseLevels(levels): frees the levels not yet given to writeFiles (a failed or aborted write).
Napi::Value ReleaseLevelsJs(const Napi::CallbackInfo& info);

}  // namespace film
