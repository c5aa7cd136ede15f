// Shape-level resolvers: every argument check and size computation of the bindings, on shapes and
// plain values, with no pybind11, so that any array front end (the numpy bindings in bind/, a CUDA
// module with its own device arrays) resolves the same way. Each returns the resolved params or
// throws std::invalid_argument (Python: ValueError) with the message the bindings have always raised;
// `op` / `name` prefixes the message.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fastnn.h"

namespace fastnn {
using Shape = std::vector<int64_t>;
using Pair = std::array<int64_t, 2>;  // (height, width) of strides, pool_size, dilation_rate

std::string shape_str(const Shape& s);  // "(2, 3)", "(4,)", "()"
// "<what> has shape (..), expected (..)"
void check_shape(const Shape& s, const Shape& want, const std::string& what);
// "<what> have different shapes: (..) and (..)"
void check_same_shape(const Shape& a, const Shape& b, const std::string& what);

// ---- conv / pool (NHWC, HWIO; Keras "valid" / "same" with the TF padding rule) ----
// x (B,H,W,C) 4-D and non-empty; `arg` names it in the message.
void check_nhwc(const Shape& x, const std::string& op, const char* arg);
// x and kernel (KH,KW,C,OC) 4-D, non-empty, with matching channels.
void check_conv2d_operands(const Shape& x, const Shape& kernel, const std::string& op);
// padding: "valid" or "same", any case; returns whether it is "same".
bool same_padding(std::string padding, const std::string& op);
// check_conv2d_operands, then the geometry; strides and dilation are >= 1.
Conv2dParams resolve_conv2d(const Shape& x, const Shape& kernel, Pair strides, const std::string& padding,
                            Pair dilation, const std::string& op);
// x checked by check_nhwc; strides default to pool_size (Keras).
Pool2dParams resolve_pool2d(const Shape& x, Pair pool_size, std::optional<Pair> strides, const std::string& padding,
                            const std::string& op);

// ---- gemm: op(a) (M, K) from a, op(b) (K, N) from b; both 2-D ----
struct GemmDims {
  int64_t M, N, K;
};
GemmDims resolve_gemm(const Shape& a, const Shape& b, bool trans_a, bool trans_b, const std::string& activation);
// beta != 0 reads c, so c must be given; c and bias (when given) match (M, N) and (N,).
void check_gemm_beta(float beta, bool has_c);
void check_gemm_c(const Shape& c, const GemmDims& d);
void check_gemm_bias(const Shape& bias, const GemmDims& d);

// ---- elementwise group ----
// (outer, K, inner) of shape x around axis (negative counts from the end).
struct AxisSplit {
  int64_t outer, K, inner;
};
AxisSplit resolve_softmax_axis(const Shape& x, int axis, const std::string& name);
// logits / probabilities: 2-D (batch, classes) with classes > 0; `what` names them.
void check_rows(const Shape& x, const std::string& name, const char* what);
// Whether target t of a (B, K) cross-entropy holds class ids (else a (B, K) distribution); ids must
// then have shape (B,) or (B, 1).
bool sparse_target(const Shape& t, int64_t B, int64_t K, const std::string& name);
// The label at index b (as float64; `shown`: how the front end prints it) as a class id in [0, K).
int32_t resolve_class_id(double v, const std::string& shown, int64_t b, int64_t K, const std::string& name);
// dloss: a scalar (broadcast) or B values; returns whether it is broadcast.
bool resolve_row_grads(const Shape& g, int64_t B, const std::string& name);
// softmax_xent_backward's lse: B values.
void check_lse(const Shape& lse, int64_t B, const std::string& name);
void check_dropout_rate(double rate);

// ---- optimizers ----
void check_optim_step(int64_t step, const std::string& name);
// momentum > 0 needs its slot (sgd_update, rmsprop_update).
void check_momentum_slot(double momentum, bool has_slot, const std::string& name);
void check_centered_slot(bool centered, bool has_slot);

// ---- image resample (ops/resample.h) ----
// x (B,H,W,C) non-empty, transforms (B, 8) or (1, 8), output size (OH, OW) >= 1, interpolation
// "nearest"/"bilinear", fill_mode "reflect"/"wrap"/"constant"/"nearest".
ResampleParams resolve_resample(const Shape& x, const Shape& transforms, int64_t OH, int64_t OW,
                                const std::string& interpolation, const std::string& fill_mode, float fill_value,
                                const std::string& op);
}  // namespace fastnn
