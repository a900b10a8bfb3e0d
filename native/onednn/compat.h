// The few oneDNN calls whose form differs between the 2.x API (Debian 12: 2.6) and the 3.x API
// (Debian 13: 3.6/3.7), so that engine.cc has one code path. Version 3 dropped the operation
// descriptors (primitive descriptors now take the engine first), the scale of eltwise post-ops,
// memory::desc::dims() (now get_dims()) and the Xeon Phi ISAs.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <string>

#if DNNL_VERSION_MAJOR != 2 && DNNL_VERSION_MAJOR != 3
#error "film-features' oneDNN engine supports oneDNN 2.x and 3.x (cmake/onednn.cmake checks this)"
#endif

namespace film {
namespace onednn {
namespace compat {

inline dnnl::memory::dims DimsOf(const dnnl::memory::desc& md) {
#if DNNL_VERSION_MAJOR >= 3
  return md.get_dims();
#else
  return md.dims();
#endif
}

// LeakyReLU(alpha): oneDNN's eltwise_relu with a negative slope.
inline void AppendLeakyRelu(dnnl::post_ops& ops, float alpha) {
#if DNNL_VERSION_MAJOR >= 3
  ops.append_eltwise(dnnl::algorithm::eltwise_relu, alpha, 0.f);
#else
  ops.append_eltwise(/*scale=*/1.f, dnnl::algorithm::eltwise_relu, alpha, 0.f);
#endif
}

// Direct convolution for inference, stride 1, symmetric zero padding `pad`.
inline dnnl::convolution_forward::primitive_desc ConvPd(const dnnl::engine& engine, const dnnl::memory::desc& src,
                                                        const dnnl::memory::desc& weights,
                                                        const dnnl::memory::desc& bias, const dnnl::memory::desc& dst,
                                                        dnnl::memory::dim pad, const dnnl::primitive_attr& attr) {
  const dnnl::memory::dims strides{1, 1}, padding{pad, pad};
#if DNNL_VERSION_MAJOR >= 3
  return {engine, dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, weights, bias, dst,
          strides, padding, padding, attr};
#else
  const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                             src, weights, bias, dst, strides, padding, padding);
  return {desc, attr, engine};
#endif
}

// Average pooling for inference, square window `size` with stride `size`, no padding (floor sizes).
inline dnnl::pooling_forward::primitive_desc AvgPoolPd(const dnnl::engine& engine, const dnnl::memory::desc& src,
                                                       const dnnl::memory::desc& dst, dnnl::memory::dim size,
                                                       const dnnl::primitive_attr& attr) {
  const dnnl::memory::dims window{size, size}, none{0, 0};
  constexpr auto kAlgorithm = dnnl::algorithm::pooling_avg_exclude_padding;
#if DNNL_VERSION_MAJOR >= 3
  return {engine, dnnl::prop_kind::forward_inference, kAlgorithm, src, dst, window, window, /*dilation=*/none, none,
          none, attr};
#else
  const dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, kAlgorithm, src, dst, window, window,
                                         none, none);
  return {desc, attr, engine};
#endif
}

// Batched matrix product for inference: src [b, m, k] x weights [b, k, n] -> dst [b, m, n].
inline dnnl::matmul::primitive_desc MatmulPd(const dnnl::engine& engine, const dnnl::memory::desc& src,
                                             const dnnl::memory::desc& weights, const dnnl::memory::desc& dst,
                                             const dnnl::primitive_attr& attr) {
#if DNNL_VERSION_MAJOR >= 3
  return {engine, src, weights, dst, attr};
#else
  return {dnnl::matmul::desc(src, weights, dst), attr, engine};
#endif
}

// The instruction set oneDNN's kernels use on this machine, e.g. "avx2" or "avx512_core".
inline std::string IsaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
#if DNNL_VERSION_MAJOR >= 3
    case dnnl::cpu_isa::avx2_vnni_2: return "avx2_vnni_2";
    case dnnl::cpu_isa::avx512_core_fp16: return "avx512_core_fp16";
    case dnnl::cpu_isa::avx512_core_amx_fp16: return "avx512_core_amx_fp16";
#else
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
#endif
    default: return "unknown";
  }
}

// The oneDNN library this process runs (the one libtorch loads), e.g. "3.6.2".
inline std::string RuntimeVersion() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

}  // namespace compat
}  // namespace onednn
}  // namespace film
