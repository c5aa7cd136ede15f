// The pointwise activations: the one list from which the UnaryOp enum, the kernels' dispatch (cpu/
// activation.cpp, ref/activation_ref.cpp), the bindings `<name>_forward` / `<name>_backward` and
// the Python attribute _C.unary_ops are generated.
//
// Adding an activation: a row here, its Unary<kId> in cpu/activation.cpp, its Ref<kId> in
// ref/activation_ref.cpp (the build fails until both exist), and its formula in the Python tests.
//
// X(name, Id, saves_output, alpha, doc):
//   name          binding prefix and Keras name
//   Id            enum constant k<Id>
//   saves_output  backward's saved array is the forward OUTPUT y (else the input x)
//   alpha         default of the `alpha` keyword, or std::nullopt when the op takes no alpha
//   doc           one line, the formula
#pragma once
#include <optional>
#include <type_traits>

#define FASTNN_UNARY_OPS(X)                                                                                      \
  X(relu, Relu, true, std::nullopt, "max(x, 0).")                                                                \
  X(leaky_relu, LeakyRelu, false, 0.2, "x if x >= 0 else alpha * x (alpha: the negative slope).")               \
  X(elu, Elu, false, 1.0, "x if x > 0 else alpha * (exp(x) - 1).")                                              \
  X(selu, Selu, false, std::nullopt, "scale * (x if x > 0 else a * (exp(x) - 1)), a = 1.67326, scale = 1.05070.") \
  X(gelu, Gelu, false, std::nullopt, "x * Phi(x), Phi the standard normal CDF (exact, not the tanh form).")      \
  X(silu, Silu, false, std::nullopt, "x * sigmoid(x).")                                                          \
  X(softplus, Softplus, false, std::nullopt, "log(1 + exp(x)).")                                                 \
  X(sigmoid, Sigmoid, true, std::nullopt, "1 / (1 + exp(-x)).")                                                  \
  X(tanh, Tanh, true, std::nullopt, "tanh(x).")                                                                  \
  X(exp, Exp, true, std::nullopt, "exp(x).")                                                                     \
  X(log, Log, false, std::nullopt, "natural logarithm of x.")                                                    \
  X(softsign, Softsign, false, std::nullopt, "x / (1 + |x|).")                                                   \
  X(hard_sigmoid, HardSigmoid, false, std::nullopt, "clip(x / 6 + 0.5, 0, 1) (Keras 3).")                        \
  X(relu6, Relu6, false, std::nullopt, "min(max(x, 0), 6).")

namespace fastnn {
enum UnaryOp : int {
#define FASTNN_UNARY_ENUM(name, Id, saves, alpha, doc) k##Id,
  FASTNN_UNARY_OPS(FASTNN_UNARY_ENUM)
#undef FASTNN_UNARY_ENUM
  kUnaryCount
};

struct UnaryInfo {
  const char* name;
  bool saves_output;
  std::optional<double> alpha;
  const char* doc;
};
// Indexed by UnaryOp. NOTE: static (internal linkage): this header is compiled once per ISA.
static constexpr UnaryInfo kUnaryOps[] = {
#define FASTNN_UNARY_INFO(name, Id, saves, alpha, doc) {#name, saves, alpha, doc},
    FASTNN_UNARY_OPS(FASTNN_UNARY_INFO)
#undef FASTNN_UNARY_INFO
};
static_assert(sizeof(kUnaryOps) / sizeof(kUnaryOps[0]) == kUnaryCount, "one UnaryInfo per UnaryOp");

// The kernels' dispatch: calls f(std::integral_constant<int, op>{}), so that f can instantiate its
// per-op template. NOTE: static: instantiated once per ISA.
template <class F>
static inline void visit_unary(int op, const F& f) {
  switch (op) {
#define FASTNN_UNARY_CASE(name, Id, saves, alpha, doc) \
  case k##Id: return f(std::integral_constant<int, k##Id>{});
    FASTNN_UNARY_OPS(FASTNN_UNARY_CASE)
#undef FASTNN_UNARY_CASE
  }
}
}  // namespace fastnn
