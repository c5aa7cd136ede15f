// Recurrent op group: fused SimpleRNN / LSTM / GRU layers over a whole sequence, and Embedding.
//
// Layouts are Keras 3's: x (B,T,C), kernel (C, G*U), recurrent_kernel (U, G*U), gates in Keras order
// (LSTM i,f,c,o; GRU z,r,h), G = 1 / 4 / 3. Bias: (G*U,), or for GRU reset_after (2, 3U) = (input bias,
// recurrent bias). Internal sequences are batch-major (B,T,.) and indexed by INPUT time t, except y
// and dy, which are indexed by processing step s (t = s, or T-1-s with go_backwards, as Keras outputs).
//
// Masking (Keras): mask (B,T) bytes by input time, non-zero = valid. A masked step copies the state
// (h, c) through and outputs the previous step's output (zeros before the first valid step).
#pragma once
#include <cstdint>

namespace fastnn {
enum RnnCell : int { kRnnSimple = 0, kRnnLstm = 1, kRnnGru = 2 /* reset_after */, kRnnGruBefore = 3 };
// Activations the kernels fuse; each derivative is a function of the activation's output.
enum RnnAct : int { kRnnTanh = 0, kRnnSigmoid = 1, kRnnRelu = 2, kRnnLinear = 3, kRnnHardSigmoid = 4 };

static inline int rnn_gates(int cell) { return cell == kRnnSimple ? 1 : cell == kRnnLstm ? 4 : 3; }
// Floats per (b, t) of the saved activations `acts` (B,T,S):
//   simple: h_t | lstm: i,f,g,o | gru: z,r,hh,(h_{t-1}R_h + rb_h) | gru_before: z,r,hh,r*h_{t-1}
static inline int64_t rnn_saved_width(int cell, int64_t U) { return cell == kRnnSimple ? U : 4 * U; }

struct RnnParams {
  int64_t B, T, C, U;
  int cell;      // RnnCell
  int act;       // RnnAct of the candidate / output (Keras `activation`)
  int ract;      // RnnAct of the gates (Keras `recurrent_activation`)
  int reverse;   // go_backwards: steps run t = T-1 .. 0
  int zero_masked;  // Keras zero_output_for_mask: a masked step outputs zeros (not the previous output)
};

// Buffers of one forward call. Null pointers: y (no sequence output), c0/h0 (zeros), mask (all valid),
// bias (use_bias=False). hp, acts, cs are what the backward reads; the forward always writes them.
struct RnnForwardArgs {
  float* y;           // (B,T,U) outputs by step, or null
  float* last;        // (B,U) output of the last step
  float* h_out;       // (B,U) final h
  float* c_out;       // (B,U) final c (LSTM), else null
  float* hp;          // (B,T,U) h entering the step of input t
  float* acts;        // (B,T,S) saved activations, S = rnn_saved_width
  float* cs;          // (B,T,U) LSTM c after the step of input t, else null
  const float* x;     // (B,T,C)
  const float* kernel, *recurrent, *bias;
  const float* h0, *c0;
  const uint8_t* mask;
};

// Gradients of one backward call. dy (B,T,U) by step, dlast (B,U) (gradient of the last output), dh_out,
// dc_out (B,U): any may be null (zero). Outputs (written): dx (B,T,C), dkernel, drecurrent, dbias (shape of
// bias), dh0, dc0 (B,U); any may be null (not computed).
struct RnnBackwardArgs {
  float* dx, *dkernel, *drecurrent, *dbias, *dh0, *dc0;
  const float* dy, *dlast, *dh_out, *dc_out;
  const float* x, *kernel, *recurrent;
  const float* h0, *c0;
  const uint8_t* mask;
  const float* hp, *acts, *cs;   // from the forward
  int has_bias;
};

struct RnnOps {
  void (*rnn_forward)(const RnnForwardArgs& a, const RnnParams& p);
  void (*rnn_backward)(const RnnBackwardArgs& a, const RnnParams& p);
  // out (N,D) = table (V,D) rows ids (N,) (ids already checked: 0 <= id < V).
  void (*embedding_forward)(float* out, const float* table, const int64_t* ids, int64_t N, int64_t V, int64_t D);
  // dtable (V,D) = sum over i with ids[i] = v of dout[i] (rows never hit are zero); the sum for each row
  // runs in the order of i whatever the thread count.
  void (*embedding_backward)(float* dtable, const float* dout, const int64_t* ids, int64_t N, int64_t V, int64_t D);
};
}  // namespace fastnn
