// Reference recurrent layers (the test oracle): one (batch row, step) at a time, sums in double, the
// formulas exactly as Keras 3's cells write them (keras/src/layers/rnn/{simple_rnn,lstm,gru}.py).
#include <cmath>
#include <vector>

#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
double act_f(int a, double x) {
  switch (a) {
    case kRnnTanh: return std::tanh(x);
    case kRnnSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case kRnnRelu: return x > 0 ? x : 0.0;
    case kRnnHardSigmoid: return x <= -3 ? 0.0 : x >= 3 ? 1.0 : x / 6 + 0.5;
    default: return x;
  }
}
// derivative as a function of the output y = act_f(a, x)
double act_d(int a, double y) {
  switch (a) {
    case kRnnTanh: return 1 - y * y;
    case kRnnSigmoid: return y * (1 - y);
    case kRnnRelu: return y > 0 ? 1.0 : 0.0;
    case kRnnHardSigmoid: return y > 0 && y < 1 ? 1.0 / 6 : 0.0;
    default: return 1.0;
  }
}
bool valid(const uint8_t* mask, const RnnParams& p, int64_t b, int64_t t) { return !mask || mask[b * p.T + t]; }
}  // namespace

void rnn_forward(const RnnForwardArgs& a, const RnnParams& p) {
  const int64_t B = p.B, T = p.T, C = p.C, U = p.U, G = rnn_gates(p.cell), GU = G * U;
  const int64_t S = rnn_saved_width(p.cell, U);
  const bool after = p.cell == kRnnGru;
  const float* xb = a.bias;                                 // input bias (GU)
  const float* hb = a.bias && after ? a.bias + GU : nullptr;  // recurrent bias (GRU reset_after)
  std::vector<double> h(U), c(U), out(U), xg(GU), hg(GU), g(GU), rh(U);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t u = 0; u < U; ++u) {
      h[u] = a.h0 ? a.h0[b * U + u] : 0.0;
      c[u] = a.c0 ? a.c0[b * U + u] : 0.0;
      out[u] = 0.0;
    }
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = p.reverse ? T - 1 - s : s, bt = b * T + t;
      float* sv = a.acts + bt * S;
      for (int64_t u = 0; u < U; ++u) a.hp[bt * U + u] = float(h[u]);
      if (valid(a.mask, p, b, t)) {
        for (int64_t j = 0; j < GU; ++j) {
          double sx = xb ? xb[j] : 0.0, sh = hb ? hb[j] : 0.0;
          for (int64_t k = 0; k < C; ++k) sx += double(a.x[bt * C + k]) * a.kernel[k * GU + j];
          for (int64_t k = 0; k < U; ++k) sh += h[k] * a.recurrent[k * GU + j];
          xg[j] = sx;
          hg[j] = sh;
        }
        if (p.cell == kRnnSimple) {
          for (int64_t u = 0; u < U; ++u) h[u] = act_f(p.act, xg[u] + hg[u]), sv[u] = float(h[u]);
        } else if (p.cell == kRnnLstm) {
          for (int64_t j = 0; j < GU; ++j) g[j] = act_f(j / U == 2 ? p.act : p.ract, xg[j] + hg[j]);
          for (int64_t u = 0; u < U; ++u) {
            c[u] = g[U + u] * c[u] + g[u] * g[2 * U + u];
            h[u] = g[3 * U + u] * act_f(p.act, c[u]);
          }
          for (int64_t j = 0; j < GU; ++j) sv[j] = float(g[j]);
        } else {
          for (int64_t j = 0; j < 2 * U; ++j) g[j] = act_f(p.ract, xg[j] + hg[j]);
          if (!after) {  // hh = act(x_h + (r * h) @ R_h)
            for (int64_t u = 0; u < U; ++u) rh[u] = g[U + u] * h[u];
            for (int64_t u = 0; u < U; ++u) {
              double sh = 0.0;
              for (int64_t k = 0; k < U; ++k) sh += rh[k] * a.recurrent[k * GU + 2 * U + u];
              hg[2 * U + u] = sh;
            }
          }
          for (int64_t u = 0; u < U; ++u) {
            const double inner = hg[2 * U + u];
            g[2 * U + u] = act_f(p.act, xg[2 * U + u] + (after ? g[U + u] * inner : inner));
            sv[3 * U + u] = float(after ? inner : rh[u]);
            h[u] = g[u] * h[u] + (1 - g[u]) * g[2 * U + u];
          }
          for (int64_t j = 0; j < GU; ++j) sv[j] = float(g[j]);
        }
        for (int64_t u = 0; u < U; ++u) out[u] = h[u];
      } else {
        for (int64_t j = 0; j < S; ++j) sv[j] = 0.0f;
        if (p.zero_masked)
          for (int64_t u = 0; u < U; ++u) out[u] = 0.0;
      }
      if (a.cs)
        for (int64_t u = 0; u < U; ++u) a.cs[bt * U + u] = float(c[u]);
      if (a.y)
        for (int64_t u = 0; u < U; ++u) a.y[(b * T + s) * U + u] = float(out[u]);
    }
    for (int64_t u = 0; u < U; ++u) {
      a.last[b * U + u] = float(out[u]);
      a.h_out[b * U + u] = float(h[u]);
      if (a.c_out) a.c_out[b * U + u] = float(c[u]);
    }
  }
}

void rnn_backward(const RnnBackwardArgs& a, const RnnParams& p) {
  const int64_t B = p.B, T = p.T, C = p.C, U = p.U, G = rnn_gates(p.cell), GU = G * U;
  const int64_t S = rnn_saved_width(p.cell, U);
  const bool after = p.cell == kRnnGru, before = p.cell == kRnnGruBefore;
  std::vector<double> dW(C * GU, 0.0), dR(U * GU, 0.0), db(2 * GU, 0.0);
  std::vector<double> dh(U), dc(U), pend(U), dgx(GU), dgh(GU), dprev(U), drh(U);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t u = 0; u < U; ++u) {
      dh[u] = a.dh_out ? a.dh_out[b * U + u] : 0.0;
      dc[u] = a.dc_out ? a.dc_out[b * U + u] : 0.0;
      pend[u] = 0.0;
    }
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = p.reverse ? T - 1 - s : s, bt = b * T + t;
      const bool ok = valid(a.mask, p, b, t);
      if (ok || !p.zero_masked)  // a zeroed output has no gradient
        for (int64_t u = 0; u < U; ++u)
          pend[u] += (a.dy ? a.dy[(b * T + s) * U + u] : 0.0) + (s == T - 1 && a.dlast ? a.dlast[b * U + u] : 0.0);
      if (!ok) {
        if (a.dx)
          for (int64_t k = 0; k < C; ++k) a.dx[bt * C + k] = 0.0f;
        continue;  // dh, dc carried through; the output gradient goes to the previous output
      }
      const float* sv = a.acts + bt * S;
      const float* hp = a.hp + bt * U;
      for (int64_t u = 0; u < U; ++u) dh[u] += pend[u], pend[u] = 0.0, dprev[u] = 0.0;
      if (p.cell == kRnnSimple) {
        for (int64_t u = 0; u < U; ++u) dgx[u] = dgh[u] = dh[u] * act_d(p.act, sv[u]);
      } else if (p.cell == kRnnLstm) {
        for (int64_t u = 0; u < U; ++u) {
          const double i = sv[u], f = sv[U + u], g = sv[2 * U + u], o = sv[3 * U + u];
          const double cprev = t == (p.reverse ? T - 1 : 0) ? (a.c0 ? a.c0[b * U + u] : 0.0)
                                                             : a.cs[(b * T + (p.reverse ? t + 1 : t - 1)) * U + u];
          const double tc = act_f(p.act, a.cs[bt * U + u]);
          const double dct = dc[u] + dh[u] * o * act_d(p.act, tc);
          dgx[u] = dct * g * act_d(p.ract, i);
          dgx[U + u] = dct * cprev * act_d(p.ract, f);
          dgx[2 * U + u] = dct * i * act_d(p.act, g);
          dgx[3 * U + u] = dh[u] * tc * act_d(p.ract, o);
          dc[u] = dct * f;
        }
        for (int64_t j = 0; j < GU; ++j) dgh[j] = dgx[j];
      } else {
        for (int64_t u = 0; u < U; ++u) {
          const double z = sv[u], hh = sv[2 * U + u];
          dgx[u] = dh[u] * (hp[u] - hh) * act_d(p.ract, z);
          dgx[2 * U + u] = dh[u] * (1 - z) * act_d(p.act, hh);
          dprev[u] = dh[u] * z;
        }
        if (after) {
          for (int64_t u = 0; u < U; ++u) {
            const double r = sv[U + u], inner = sv[3 * U + u];
            dgx[U + u] = dgx[2 * U + u] * inner * act_d(p.ract, r);
            dgh[2 * U + u] = dgx[2 * U + u] * r;
          }
        } else {  // d(r*h) = dhh_pre @ R_h^T
          for (int64_t k = 0; k < U; ++k) {
            double sacc = 0.0;
            for (int64_t u = 0; u < U; ++u) sacc += dgx[2 * U + u] * a.recurrent[k * GU + 2 * U + u];
            drh[k] = sacc;
          }
          for (int64_t u = 0; u < U; ++u) {
            const double r = sv[U + u];
            dgx[U + u] = drh[u] * hp[u] * act_d(p.ract, r);
            dprev[u] += drh[u] * r;
            dgh[2 * U + u] = 0.0;
          }
        }
        for (int64_t j = 0; j < 2 * U; ++j) dgh[j] = dgx[j];
      }
      // weight gradients and dx of this step
      for (int64_t j = 0; j < GU; ++j) {
        db[j] += dgx[j];
        if (after) db[GU + j] += dgh[j];
        for (int64_t k = 0; k < C; ++k) dW[k * GU + j] += double(a.x[bt * C + k]) * dgx[j];
        for (int64_t k = 0; k < U; ++k) {
          const double hk = before && j >= 2 * U ? double(sv[3 * U + k]) : double(hp[k]);
          dR[k * GU + j] += hk * (before && j >= 2 * U ? dgx[j] : dgh[j]);
        }
      }
      if (a.dx)
        for (int64_t k = 0; k < C; ++k) {
          double sacc = 0.0;
          for (int64_t j = 0; j < GU; ++j) sacc += dgx[j] * a.kernel[k * GU + j];
          a.dx[bt * C + k] = float(sacc);
        }
      for (int64_t k = 0; k < U; ++k) {
        double sacc = dprev[k];
        for (int64_t j = 0; j < GU; ++j) sacc += dgh[j] * a.recurrent[k * GU + j];
        dh[k] = sacc;
      }
    }
    for (int64_t u = 0; u < U; ++u) {
      if (a.dh0) a.dh0[b * U + u] = float(dh[u]);
      if (a.dc0) a.dc0[b * U + u] = float(dc[u]);
    }
  }
  if (a.dkernel)
    for (int64_t i = 0; i < C * GU; ++i) a.dkernel[i] = float(dW[i]);
  if (a.drecurrent)
    for (int64_t i = 0; i < U * GU; ++i) a.drecurrent[i] = float(dR[i]);
  if (a.dbias && a.has_bias)
    for (int64_t i = 0; i < (after ? 2 : 1) * GU; ++i) a.dbias[i] = float(db[i]);
}

void fill_rnn(RnnOps& t) {
  t.rnn_forward = rnn_forward;
  t.rnn_backward = rnn_backward;
}
}  // namespace ref
}  // namespace fastnn
