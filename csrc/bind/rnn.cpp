// Bindings of the fused recurrent layers: names (cell, activations) resolved here, every shape checked
// against x (B,T,C) and the kernels before a kernel runs.
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
             const std::string& ract, bool go_backwards, const std::string& op) {
  RnnIO io{};
  RnnParams& p = io.p;
  p.cell = cell_arg(cell);
  p.act = act_arg(act, "activation");
  p.ract = act_arg(ract, "recurrent_activation");
  p.reverse = go_backwards;
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

int64_t bias_rows(int cell) { return cell == kRnnGru ? 2 : 1; }
Shape bias_shape(const RnnParams& p) {
  const int64_t GU = rnn_gates(p.cell) * p.U;
  return p.cell == kRnnGru ? Shape{2, GU} : Shape{GU};
}
}  // namespace

void bind_rnn(py::module_& m, const KernelTable* t) {
  m.def(
      "rnn_forward",
      [t](const std::string& cell, const py::object& x_in, const py::object& k_in, const py::object& r_in,
          const py::object& bias_in, const py::object& h0_in, const py::object& c0_in, const py::object& mask_in,
          const std::string& act, const std::string& ract, bool go_backwards, bool return_sequences) {
        const std::string op = "rnn_forward";
        RnnIO io = rnn_io(cell, x_in, k_in, r_in, h0_in, c0_in, mask_in, act, ract, go_backwards, op);
        const RnnParams& p = io.p;
        farray bias;
        if (!bias_in.is_none()) {
          bias = as_f32_contig(bias_in, "rnn_forward: bias");
          check_shape(shape_of(bias), bias_shape(p), op + ": bias");
        }
        const bool lstm = p.cell == kRnnLstm;
        const int64_t S = rnn_saved_width(p.cell, p.U);
        farray y = return_sequences ? farray({p.B, p.T, p.U}) : farray();
        farray last({p.B, p.U}), h({p.B, p.U}), hp({p.B, p.T, p.U}), acts({p.B, p.T, S});
        farray c = lstm ? farray({p.B, p.U}) : farray(), cs = lstm ? farray({p.B, p.T, p.U}) : farray();
        RnnForwardArgs a{return_sequences ? y.mutable_data() : nullptr, last.mutable_data(), h.mutable_data(),
                         lstm ? c.mutable_data() : nullptr, hp.mutable_data(), acts.mutable_data(),
                         lstm ? cs.mutable_data() : nullptr, io.x.data(), io.kernel.data(), io.recurrent.data(),
                         bias_in.is_none() ? nullptr : bias.data(), io.has_h0 ? io.h0.data() : nullptr,
                         io.has_c0 ? io.c0.data() : nullptr, io.has_mask ? io.mask.data() : nullptr};
        {
          py::gil_scoped_release nogil;
          t->rnn.rnn_forward(a, p);
        }
        return py::make_tuple(return_sequences ? py::object(y) : py::object(last), h,
                              lstm ? py::object(c) : py::none(),
                              py::make_tuple(hp, acts, lstm ? py::object(cs) : py::none()));
      },
      py::arg("cell"), py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias") = py::none(),
      py::arg("h0") = py::none(), py::arg("c0") = py::none(), py::arg("mask") = py::none(), py::kw_only(),
      py::arg("activation") = "tanh", py::arg("recurrent_activation") = "sigmoid", py::arg("go_backwards") = false,
      py::arg("return_sequences") = true,
      "Fused recurrent layer over x (B,T,C) (cell 'simple_rnn', 'lstm', 'gru' (reset_after) or 'gru_reset_before', "
      "Keras weight layouts). Returns (y, h, c, saved): y (B,T,U) by step, or the last output (B,U); c for the "
      "LSTM (else None); saved = what rnn_backward reads.");

  m.def(
      "rnn_backward",
      [t](const std::string& cell, const py::object& x_in, const py::object& k_in, const py::object& r_in,
          const py::tuple& saved, const py::object& dy_in, const py::object& dlast_in, const py::object& dh_in,
          const py::object& dc_in, const py::object& h0_in, const py::object& c0_in, const py::object& mask_in,
          bool has_bias, const std::string& act, const std::string& ract, bool go_backwards, bool need_dx,
          bool need_dkernel, bool need_drecurrent, bool need_dbias, bool need_dh0, bool need_dc0) {
        const std::string op = "rnn_backward";
        RnnIO io = rnn_io(cell, x_in, k_in, r_in, h0_in, c0_in, mask_in, act, ract, go_backwards, op);
        const RnnParams& p = io.p;
        const bool lstm = p.cell == kRnnLstm;
        FASTNN_CHECK(py::len(saved) == 3, op + ": saved must be the 3-tuple returned by rnn_forward");
        farray hp = as_f32_contig(saved[0], "rnn_backward: saved hp");
        farray acts = as_f32_contig(saved[1], "rnn_backward: saved activations");
        check_shape(shape_of(hp), {p.B, p.T, p.U}, op + ": saved hp");
        check_shape(shape_of(acts), {p.B, p.T, rnn_saved_width(p.cell, p.U)}, op + ": saved activations");
        farray cs;
        if (lstm) {
          cs = as_f32_contig(saved[2], "rnn_backward: saved c");
          check_shape(shape_of(cs), {p.B, p.T, p.U}, op + ": saved c");
        }
        const auto grad = [&](const py::object& g, const Shape& want, const char* name) {
          farray a;
          if (!g.is_none()) {
            a = as_f32_contig(g, (op + ": " + name).c_str());
            check_shape(shape_of(a), want, op + ": " + name);
          }
          return a;
        };
        farray dy = grad(dy_in, {p.B, p.T, p.U}, "dy"), dlast = grad(dlast_in, {p.B, p.U}, "dlast");
        farray dh = grad(dh_in, {p.B, p.U}, "dh"), dc = grad(dc_in, {p.B, p.U}, "dc");
        FASTNN_CHECK(lstm || dc_in.is_none(), op + ": only the LSTM has a cell state c");
        py::object rdx = py::none(), rdk = py::none(), rdr = py::none(), rdb = py::none(), rdh0 = py::none(),
                   rdc0 = py::none();
        const auto alloc = [](bool need, const Shape& s, py::object* holder) -> float* {
          if (!need) return nullptr;
          farray a(s);
          *holder = a;
          return a.mutable_data();
        };
        const int64_t GU = rnn_gates(p.cell) * p.U;
        RnnBackwardArgs a{};
        a.dx = alloc(need_dx, {p.B, p.T, p.C}, &rdx);
        a.dkernel = alloc(need_dkernel, {p.C, GU}, &rdk);
        a.drecurrent = alloc(need_drecurrent, {p.U, GU}, &rdr);
        a.dbias = alloc(need_dbias && has_bias, bias_shape(p), &rdb);
        a.dh0 = alloc(need_dh0, {p.B, p.U}, &rdh0);
        a.dc0 = alloc(need_dc0 && lstm, {p.B, p.U}, &rdc0);
        a.dy = dy_in.is_none() ? nullptr : dy.data();
        a.dlast = dlast_in.is_none() ? nullptr : dlast.data();
        a.dh_out = dh_in.is_none() ? nullptr : dh.data();
        a.dc_out = dc_in.is_none() ? nullptr : dc.data();
        a.x = io.x.data(), a.kernel = io.kernel.data(), a.recurrent = io.recurrent.data();
        a.h0 = io.has_h0 ? io.h0.data() : nullptr;
        a.c0 = io.has_c0 ? io.c0.data() : nullptr;
        a.mask = io.has_mask ? io.mask.data() : nullptr;
        a.hp = hp.data(), a.acts = acts.data(), a.cs = lstm ? cs.data() : nullptr;
        a.has_bias = has_bias;
        {
          py::gil_scoped_release nogil;
          t->rnn.rnn_backward(a, p);
        }
        return py::make_tuple(rdx, rdk, rdr, rdb, rdh0, rdc0);
      },
      py::arg("cell"), py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("saved"),
      py::kw_only(), py::arg("dy") = py::none(), py::arg("dlast") = py::none(), py::arg("dh") = py::none(),
      py::arg("dc") = py::none(), py::arg("h0") = py::none(), py::arg("c0") = py::none(),
      py::arg("mask") = py::none(), py::arg("has_bias") = true, py::arg("activation") = "tanh",
      py::arg("recurrent_activation") = "sigmoid", py::arg("go_backwards") = false, py::arg("dx") = true,
      py::arg("dkernel") = true, py::arg("drecurrent") = true, py::arg("dbias") = true, py::arg("dh0") = false,
      py::arg("dc0") = false,
      "Gradients (dx, dkernel, drecurrent, dbias, dh0, dc0) of rnn_forward given dy (B,T,U) by step and/or dlast "
      "(the last output's), dh/dc (final state's); None where not asked for.");
}
}  // namespace fastnn
