// A frame run, the batch pipeline's one pixel path: the frame's pixels as given (8-bit interleaved,
// or float planar), where they sit in the padded frame, the band of which pyramid levels to run,
// and the output levels to keep, each cut to a box and converted to float16 or not. Converting,
// padding, pooling, extracting, cutting and converting all happen off the JS thread.
//
// TypeScript computes and checks the plan (lib/frame-plan.ts) and is where its messages live;
// ReadFramePlan re-checks only what keeps every read and write in bounds, with terse messages.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "model.h"
#include "tensor_io.h"

namespace film {

struct LevelBox {
  int64_t top, left, height, width;
};

struct FramePlan {
  int64_t height, width;        // the padded level 0
  int64_t top, left;            // where the image sits in it (zeros around)
  int64_t base;                 // the first pyramid level the run takes
  int64_t from, to;             // rows of level `base` the run sees (a band and its halo)
  int64_t own_from, own_to;     // rows of level `base` whose outputs are kept
  std::vector<int64_t> keep;    // output levels kept, ascending, each >= base
  std::vector<LevelBox> boxes;  // per kept level: the box kept, in that whole level's rows and columns
  bool half;                    // float16 outputs (else float32)

  int64_t top_level() const { return keep.back(); }
};

// Reads {pad: [h, w, top, left], base, rows: [from, to], own: [from, to], keep: [..], boxes: [[t, l, h, w]..],
// half} on the JS thread, for an image of image_h x image_w.
FramePlan ReadFramePlan(const Napi::Value& value, int64_t image_h, int64_t image_w);

// Off the JS thread: the image's rows under the plan's band converted (InputTensor), padded, pooled,
// run from level base, and the kept levels cut to their rows and boxes: one tensor per kept level,
// float32 or float16 [n, c, rows kept, box width].
std::vector<Tensor> RunFrame(const Model& model, const HostInput& input, const FramePlan& plan, int threads);

// Rows [row0, row0 + rows) and columns [box.left, box.left + box.width) of a contiguous float32
// [n, c, h, w] tensor, as a new contiguous tensor: float16 (rounded to nearest even, as numpy's
// astype; F16C where the CPU has it) or float32. The caller keeps the box inside the tensor.
Tensor CutLevel(const Tensor& level, int64_t row0, int64_t rows, int64_t left, int64_t width, bool half);

// encodeLevel(data: Float32Array, shape: [n, c, h, w], box: [top, left, height, width], half: boolean):
// CutLevel on the JS thread, for the batch library's encodeLevel / LevelBuffer utilities.
Napi::Value EncodeLevelJs(const Napi::CallbackInfo& info);

}  // namespace film
