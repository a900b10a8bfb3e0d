// padding='same' -> integer padding, so that optimize_for_inference accepts FILM's own files.
#pragma once

#include <torch/script.h>

namespace film {

// Rewrites, in a frozen module's forward graph, every aten::conv2d whose padding is the string
// 'same' into one with integer padding dilation*(k-1)/2: the same numbers for odd kernels.
// Returns how many convolutions it rewrote; leaves even kernels alone.
int ReplaceSamePadding(torch::jit::Module& frozen);

}  // namespace film
