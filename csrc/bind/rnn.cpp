// Bindings of the fused recurrent layers: names (cell, activations) resolved here, every shape checked
// against x (B,T,C) and the kernels before a kernel runs.
#include "pool.h"

#include "bind/common.h"

namespace fastnn {
namespace {
using u8array = py::array_t<uint8_t, py::array::c_style>;

int cell_arg(const std::string& s) {
  if (s == "simple_rnn") return kRnnSimple;
  if (s == "lstm") return kRnnLstm;
  if (s == "gru") return kRnnGru;
  if (s == "gru_reset_before") return kRnnGruBefore;
  throw std::invalid_argument("rnn: cell must be 'simple_rnn', 'lstm', 'gru' or 'gru_reset_before', got '" + s + "'");
}

int act_arg(const std::string& s, const char* what) {
  if (s == "tanh") return kRnnTanh;
  if (s == "sigmoid") return kRnnSigmoid;
  if (s == "relu") return kRnnRelu;
  if (s == "linear") return kRnnLinear;
  if (s == "hard_sigmoid") return kRnnHardSigmoid;
  throw std::invalid_argument(std::string("rnn: ") + what +
                              " must be 'tanh', 'sigmoid', 'relu', 'linear' or 'hard_sigmoid', got '" + s + "'");
}

// The operands every call shares, checked.
struct RnnIO {
  RnnParams p;
  farray x, kernel, recurrent, h0, c0;
  u8array mask;
  bool has_h0, has_c0, has_mask;
};

RnnIO rnn_io(const std::string& cell, const py::object& x_in, const py::object& k_in, const py::object& r_in,
             const py::object& h0_in, const py::object& c0_in, const py::object& mask_in, const std::string& act,
             const std::string& ract, bool go_backwards, bool zero_masked, const std::string& op) {
  RnnIO io{};
  RnnParams& p = io.p;
  p.cell = cell_arg(cell);
  p.act = act_arg(act, "activation");
  p.ract = act_arg(ract, "recurrent_activation");
  p.reverse = go_backwards;
  p.zero_masked = zero_masked;
  io.x = as_f32_contig(x_in, (op + ": x").c_str());
  io.kernel = as_f32_contig(k_in, (op + ": kernel").c_str());
  io.recurrent = as_f32_contig(r_in, (op + ": recurrent_kernel").c_str());
  FASTNN_CHECK(io.x.ndim() == 3, op + ": x must be 3-D (batch, timesteps, features), got shape " + shape_str(io.x));
  p.B = io.x.shape(0), p.T = io.x.shape(1), p.C = io.x.shape(2);
  const int64_t G = rnn_gates(p.cell);
  FASTNN_CHECK(io.recurrent.ndim() == 2 && io.recurrent.shape(1) == G * io.recurrent.shape(0),
               op + ": recurrent_kernel must be (units, " + std::to_string(G) + " * units), got shape " +
                   shape_str(io.recurrent));
  p.U = io.recurrent.shape(0);
  check_shape(shape_of(io.kernel), {p.C, G * p.U}, op + ": kernel");
  io.has_h0 = !h0_in.is_none(), io.has_c0 = !c0_in.is_none(), io.has_mask = !mask_in.is_none();
  if (io.has_h0) {
    io.h0 = as_f32_contig(h0_in, (op + ": initial h").c_str());
    check_shape(shape_of(io.h0), {p.B, p.U}, op + ": initial h");
  }
  if (io.has_c0) {
    FASTNN_CHECK(p.cell == kRnnLstm, op + ": only the LSTM has a cell state c");
    io.c0 = as_f32_contig(c0_in, (op + ": initial c").c_str());
    check_shape(shape_of(io.c0), {p.B, p.U}, op + ": initial c");
  }
  if (io.has_mask) {
    py::array m = py::array::ensure(mask_in);
    FASTNN_CHECK(m && (m.dtype().kind() == 'b' || m.dtype().is(py::dtype::of<uint8_t>())),
                 op + ": mask must be a bool or uint8 array");
    io.mask = u8array::ensure(m.dtype().kind() == 'b' ? py::array(m.attr("view")("uint8")) : m);
    check_shape(Shape(io.mask.shape(), io.mask.shape() + io.mask.ndim()), {p.B, p.T}, op + ": mask");
  }
  return io;
}

Shape bias_shape(const RnnParams& p) {
  const int64_t GU = rnn_gates(p.cell) * p.U;
  return p.cell == kRnnGru ? Shape{2, GU} : Shape{GU};
}

// One forward call, checked and allocated: `a` points into the arrays held here.
struct FwdCall {
  RnnIO io;
  farray bias, y, last, h, hp, acts, c, cs;
  RnnForwardArgs a{};
  bool seq = false, lstm = false;

  py::tuple result() const {
    return py::make_tuple(seq ? py::object(y) : py::object(last), h, lstm ? py::object(c) : py::none(),
                          py::make_tuple(hp, acts, lstm ? py::object(cs) : py::none()));
  }
};

FwdCall prepare_forward(const std::string& cell, const py::object& x_in, const py::object& k_in,
                        const py::object& r_in, const py::object& bias_in, const py::object& h0_in,
                        const py::object& c0_in, const py::object& mask_in, const std::string& act,
                        const std::string& ract, bool go_backwards, bool return_sequences, bool zero_masked) {
  const std::string op = "rnn_forward";
  FwdCall f;
  f.io = rnn_io(cell, x_in, k_in, r_in, h0_in, c0_in, mask_in, act, ract, go_backwards, zero_masked, op);
  const RnnParams& p = f.io.p;
  const bool has_bias = !bias_in.is_none();
  if (has_bias) {
    f.bias = as_f32_contig(bias_in, "rnn_forward: bias");
    check_shape(shape_of(f.bias), bias_shape(p), op + ": bias");
  }
  f.seq = return_sequences, f.lstm = p.cell == kRnnLstm;
  const int64_t S = rnn_saved_width(p.cell, p.U);
  if (f.seq) f.y = farray({p.B, p.T, p.U});
  f.last = farray({p.B, p.U}), f.h = farray({p.B, p.U});
  f.hp = farray({p.B, p.T, p.U}), f.acts = farray({p.B, p.T, S});
  if (f.lstm) f.c = farray({p.B, p.U}), f.cs = farray({p.B, p.T, p.U});
  const RnnIO& io = f.io;
  f.a = RnnForwardArgs{f.seq ? f.y.mutable_data() : nullptr, f.last.mutable_data(), f.h.mutable_data(),
                       f.lstm ? f.c.mutable_data() : nullptr, f.hp.mutable_data(), f.acts.mutable_data(),
                       f.lstm ? f.cs.mutable_data() : nullptr, io.x.data(), io.kernel.data(), io.recurrent.data(),
                       has_bias ? f.bias.data() : nullptr, io.has_h0 ? io.h0.data() : nullptr,
                       io.has_c0 ? io.c0.data() : nullptr, io.has_mask ? io.mask.data() : nullptr};
  return f;
}

// One backward call, checked and allocated.
struct BwdCall {
  RnnIO io;
  farray hp, acts, cs, dy, dlast, dh, dc;
  py::object out[6];  // dx, dkernel, drecurrent, dbias, dh0, dc0 (None where not asked for)
  RnnBackwardArgs a{};

  py::tuple result() const { return py::make_tuple(out[0], out[1], out[2], out[3], out[4], out[5]); }
};

BwdCall prepare_backward(const std::string& cell, const py::object& x_in, const py::object& k_in,
                         const py::object& r_in, const py::tuple& saved, const py::object& dy_in,
                         const py::object& dlast_in, const py::object& dh_in, const py::object& dc_in,
                         const py::object& h0_in, const py::object& c0_in, const py::object& mask_in, bool has_bias,
                         const std::string& act, const std::string& ract, bool go_backwards, bool zero_masked,
                         const bool need[6]) {
  const std::string op = "rnn_backward";
  BwdCall w;
  w.io = rnn_io(cell, x_in, k_in, r_in, h0_in, c0_in, mask_in, act, ract, go_backwards, zero_masked, op);
  const RnnParams& p = w.io.p;
  const bool lstm = p.cell == kRnnLstm;
  FASTNN_CHECK(py::len(saved) == 3, op + ": saved must be the 3-tuple returned by rnn_forward");
  w.hp = as_f32_contig(saved[0], "rnn_backward: saved hp");
  w.acts = as_f32_contig(saved[1], "rnn_backward: saved activations");
  check_shape(shape_of(w.hp), {p.B, p.T, p.U}, op + ": saved hp");
  check_shape(shape_of(w.acts), {p.B, p.T, rnn_saved_width(p.cell, p.U)}, op + ": saved activations");
  if (lstm) {
    w.cs = as_f32_contig(saved[2], "rnn_backward: saved c");
    check_shape(shape_of(w.cs), {p.B, p.T, p.U}, op + ": saved c");
  }
  FASTNN_CHECK(lstm || dc_in.is_none(), op + ": only the LSTM has a cell state c");
  const auto grad = [&](const py::object& g, const Shape& want, const char* name, farray* holder) -> const float* {
    if (g.is_none()) return nullptr;
    *holder = as_f32_contig(g, (op + ": " + name).c_str());
    check_shape(shape_of(*holder), want, op + ": " + name);
    return holder->data();
  };
  RnnBackwardArgs& a = w.a;
  a.dy = grad(dy_in, {p.B, p.T, p.U}, "dy", &w.dy);
  a.dlast = grad(dlast_in, {p.B, p.U}, "dlast", &w.dlast);
  a.dh_out = grad(dh_in, {p.B, p.U}, "dh", &w.dh);
  a.dc_out = grad(dc_in, {p.B, p.U}, "dc", &w.dc);
  const int64_t GU = rnn_gates(p.cell) * p.U;
  const Shape shapes[6] = {{p.B, p.T, p.C}, {p.C, GU}, {p.U, GU}, bias_shape(p), {p.B, p.U}, {p.B, p.U}};
  const bool wanted[6] = {need[0], need[1], need[2], need[3] && has_bias, need[4], need[5] && lstm};
  float* ptr[6] = {};
  for (int i = 0; i < 6; ++i) {
    w.out[i] = py::none();
    if (!wanted[i]) continue;
    farray g(shapes[i]);  // uninitialised: the kernel writes it
    ptr[i] = g.mutable_data();
    w.out[i] = g;
  }
  a.dx = ptr[0], a.dkernel = ptr[1], a.drecurrent = ptr[2], a.dbias = ptr[3], a.dh0 = ptr[4], a.dc0 = ptr[5];
  const RnnIO& io = w.io;
  a.x = io.x.data(), a.kernel = io.kernel.data(), a.recurrent = io.recurrent.data();
  a.h0 = io.has_h0 ? io.h0.data() : nullptr;
  a.c0 = io.has_c0 ? io.c0.data() : nullptr;
  a.mask = io.has_mask ? io.mask.data() : nullptr;
  a.hp = w.hp.data(), a.acts = w.acts.data(), a.cs = lstm ? w.cs.data() : nullptr;
  a.has_bias = has_bias;
  return w;
}

// f(0) and f(1) on two threads at once (each runs its kernel serially: never nested), or one after the
// other when only one thread is allowed. Results do not depend on which (kernels are thread-count independent).
template <class F>
void run_pair(const F& f) {
  if (pool::max_threads() < 2) {
    f(0);
    f(1);
    return;
  }
  pool::run_chunks(2, 2, [&](int64_t i) { f(int(i)); });
}

py::tuple weights3(const py::object& w, const char* what) {
  py::tuple t = py::reinterpret_borrow<py::tuple>(py::tuple(w));
  FASTNN_CHECK(py::len(t) == 3, std::string("rnn pair: ") + what + " must be (kernel, recurrent_kernel, bias or None)");
  return t;
}

constexpr const char* kFlags[6] = {"dx", "dkernel", "drecurrent", "dbias", "dh0", "dc0"};
}  // namespace

void bind_rnn(py::module_& m, const KernelTable* t) {
  m.def(
      "rnn_forward",
      [t](const std::string& cell, const py::object& x_in, const py::object& k_in, const py::object& r_in,
          const py::object& bias_in, const py::object& h0_in, const py::object& c0_in, const py::object& mask_in,
          const std::string& act, const std::string& ract, bool go_backwards, bool return_sequences,
          bool zero_masked) {
        FwdCall f = prepare_forward(cell, x_in, k_in, r_in, bias_in, h0_in, c0_in, mask_in, act, ract, go_backwards,
                                    return_sequences, zero_masked);
        {
          py::gil_scoped_release nogil;
          t->rnn.rnn_forward(f.a, f.io.p);
        }
        return f.result();
      },
      py::arg("cell"), py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias") = py::none(),
      py::arg("h0") = py::none(), py::arg("c0") = py::none(), py::arg("mask") = py::none(), py::kw_only(),
      py::arg("activation") = "tanh", py::arg("recurrent_activation") = "sigmoid", py::arg("go_backwards") = false,
      py::arg("return_sequences") = true, py::arg("zero_output_for_mask") = false,
      "Fused recurrent layer over x (B,T,C) (cell 'simple_rnn', 'lstm', 'gru' (reset_after) or 'gru_reset_before', "
      "Keras weight layouts). Returns (y, h, c, saved): y (B,T,U) by step, or the last output (B,U); c for the "
      "LSTM (else None); saved = what rnn_backward reads.");

  m.def(
      "rnn_backward",
      [t](const std::string& cell, const py::object& x_in, const py::object& k_in, const py::object& r_in,
          const py::tuple& saved, const py::object& dy_in, const py::object& dlast_in, const py::object& dh_in,
          const py::object& dc_in, const py::object& h0_in, const py::object& c0_in, const py::object& mask_in,
          bool has_bias, const std::string& act, const std::string& ract, bool go_backwards, bool zero_masked,
          bool need_dx, bool need_dkernel, bool need_drecurrent, bool need_dbias, bool need_dh0, bool need_dc0) {
        const bool need[6] = {need_dx, need_dkernel, need_drecurrent, need_dbias, need_dh0, need_dc0};
        BwdCall w = prepare_backward(cell, x_in, k_in, r_in, saved, dy_in, dlast_in, dh_in, dc_in, h0_in, c0_in,
                                     mask_in, has_bias, act, ract, go_backwards, zero_masked, need);
        {
          py::gil_scoped_release nogil;
          t->rnn.rnn_backward(w.a, w.io.p);
        }
        return w.result();
      },
      py::arg("cell"), py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("saved"),
      py::kw_only(), py::arg("dy") = py::none(), py::arg("dlast") = py::none(), py::arg("dh") = py::none(),
      py::arg("dc") = py::none(), py::arg("h0") = py::none(), py::arg("c0") = py::none(),
      py::arg("mask") = py::none(), py::arg("has_bias") = true, py::arg("activation") = "tanh",
      py::arg("recurrent_activation") = "sigmoid", py::arg("go_backwards") = false,
      py::arg("zero_output_for_mask") = false, py::arg("dx") = true, py::arg("dkernel") = true,
      py::arg("drecurrent") = true, py::arg("dbias") = true, py::arg("dh0") = false, py::arg("dc0") = false,
      "Gradients (dx, dkernel, drecurrent, dbias, dh0, dc0) of rnn_forward given dy (B,T,U) by step and/or dlast "
      "(the last output's), dh/dc (final state's); None where not asked for.");

  // Bidirectional: both directions of one input at once, one per core.
  m.def(
      "rnn_forward_pair",
      [t](const std::string& cell, const py::object& x_in, const py::object& w0, const py::object& w1,
          const py::object& mask_in, const std::string& act, const std::string& ract, bool go_backwards,
          bool return_sequences, bool zero_masked) {
        py::tuple ws[2] = {weights3(w0, "weights"), weights3(w1, "backward weights")};
        FwdCall f[2];
        for (int i = 0; i < 2; ++i)
          f[i] = prepare_forward(cell, x_in, ws[i][0], ws[i][1], ws[i][2], py::none(), py::none(), mask_in, act, ract,
                                 i == 0 ? go_backwards : !go_backwards, return_sequences, zero_masked);
        {
          py::gil_scoped_release nogil;
          run_pair([&](int i) { t->rnn.rnn_forward(f[i].a, f[i].io.p); });
        }
        return py::make_tuple(f[0].result(), f[1].result());
      },
      py::arg("cell"), py::arg("x"), py::arg("weights"), py::arg("backward_weights"), py::arg("mask") = py::none(),
      py::kw_only(), py::arg("activation") = "tanh", py::arg("recurrent_activation") = "sigmoid",
      py::arg("go_backwards") = false, py::arg("return_sequences") = true, py::arg("zero_output_for_mask") = false,
      "rnn_forward of x with weights (kernel, recurrent_kernel, bias or None) and, in the opposite direction, with "
      "backward_weights, on two threads at once (zero initial states). Returns the two results.");

  m.def(
      "rnn_backward_pair",
      [t](const std::string& cell, const py::object& x_in, const py::object& w0, const py::object& w1,
          const py::tuple& saved0, const py::tuple& saved1, const py::object& g0, const py::object& g1,
          const py::object& mask_in, const std::string& act, const std::string& ract, bool go_backwards,
          bool zero_masked, const py::dict& need_in) {
        py::tuple ws[2] = {weights3(w0, "weights"), weights3(w1, "backward weights")};
        const py::tuple saved[2] = {saved0, saved1};
        py::tuple gs[2] = {py::tuple(g0), py::tuple(g1)};
        bool need[6];
        for (int i = 0; i < 6; ++i) need[i] = need_in.contains(kFlags[i]) ? need_in[kFlags[i]].cast<bool>() : i < 4;
        BwdCall w[2];
        for (int i = 0; i < 2; ++i) {
          FASTNN_CHECK(py::len(gs[i]) == 4, "rnn_backward_pair: gradients must be (dy, dlast, dh, dc)");
          w[i] = prepare_backward(cell, x_in, ws[i][0], ws[i][1], saved[i], gs[i][0], gs[i][1], gs[i][2], gs[i][3],
                                  py::none(), py::none(), mask_in, !ws[i][2].is_none(), act, ract,
                                  i == 0 ? go_backwards : !go_backwards, zero_masked, need);
        }
        {
          py::gil_scoped_release nogil;
          run_pair([&](int i) { t->rnn.rnn_backward(w[i].a, w[i].io.p); });
        }
        return py::make_tuple(w[0].result(), w[1].result());
      },
      py::arg("cell"), py::arg("x"), py::arg("weights"), py::arg("backward_weights"), py::arg("saved"),
      py::arg("backward_saved"), py::arg("grads"), py::arg("backward_grads"), py::arg("mask") = py::none(),
      py::kw_only(), py::arg("activation") = "tanh", py::arg("recurrent_activation") = "sigmoid",
      py::arg("go_backwards") = false, py::arg("zero_output_for_mask") = false, py::arg("needs") = py::dict(),
      "rnn_backward of both directions of rnn_forward_pair at once; grads = (dy, dlast, dh, dc) per direction; "
      "needs: {'dx': bool, ...} (default dx, dkernel, drecurrent, dbias). Returns the two gradient tuples.");
}
}  // namespace fastnn
