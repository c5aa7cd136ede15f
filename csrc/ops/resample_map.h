// The coordinate mapping of the resample op (ops/resample.h), shared by the reference and the ISA kernels:
// only csrc/ref/resample_ref.cpp and csrc/cpu/resample.cpp include it (not fastnn.h), so changing it
// rebuilds those two files only.
// NOTE: `static` functions only (internal linkage): this header is compiled once per ISA.
#pragma once
#include <cmath>
#include <cstdint>

#include "ops/resample.h"

namespace fastnn {
namespace resample {
// Coordinates this far outside the image (and NaN/inf) read fill_value whatever the mode: keeps the
// integer conversions below defined for any transform Python passes.
constexpr double kFar = 1e15;

// TF's MapCoordinate<fill_mode>(coord, len) (tensorflow/core/kernels/image/image_ops.h), in double.
// reflect: (d c b a | a b c d | d c b a); wrap: (a b c d | a b c d); nearest: clamp; constant: as is.
static inline double map_coord(double c, int64_t len, int mode) {
  const double last = double(len - 1);
  if (mode == kFillConstant) return c;
  if (mode == kFillReflect) {
    if (c < 0) {
      if (len <= 1) return 0.0;
      const double sz2 = 2.0 * double(len);
      c = sz2 * double(int64_t(-c / sz2)) + c;
      c = c < -double(len) ? c + sz2 : -c - 1.0;
    } else if (c > last) {
      if (len <= 1) return 0.0;
      const double sz2 = 2.0 * double(len);
      c -= sz2 * double(int64_t(c / sz2));
      if (c >= double(len)) c = sz2 - c - 1.0;
    }
  } else if (mode == kFillWrap) {
    if (c < 0) {
      if (len <= 1) return 0.0;
      const double sz = last;
      c += double(len) * double(int64_t(-c / sz) + 1);
    } else if (c > last) {
      if (len <= 1) return 0.0;
      const double sz = last;
      c -= double(len) * double(int64_t(c / sz));
    }
  }
  return c < 0.0 ? 0.0 : (c > last ? last : c);
}

// One output pixel's source point (ix, iy) after the fill mode; false: the pixel is fill_value
// (projection 0, non-finite or far-away point).
static inline bool source_point(const float* t, int64_t ox, int64_t oy, const ResampleParams& p, double* ix,
                                double* iy) {
  const double dx = double(ox), dy = double(oy);
  double x = double(t[0]) * dx + double(t[1]) * dy + double(t[2]);
  double y = double(t[3]) * dx + double(t[4]) * dy + double(t[5]);
  if (t[6] != 0.0f || t[7] != 0.0f) {  // projective (affine transforms skip the two divisions)
    const double k = double(t[6]) * dx + double(t[7]) * dy + 1.0;
    if (k == 0.0) return false;
    x /= k;
    y /= k;
  }
  if (!(std::fabs(x) <= kFar && std::fabs(y) <= kFar)) return false;
  x = map_coord(x, p.W, p.fill_mode);
  y = map_coord(y, p.H, p.fill_mode);
  if (p.fill_mode == kFillConstant) {  // every tap outside either way: clamp so the ints stay small
    x = x < -2.0 ? -2.0 : (x > double(p.W) + 1.0 ? double(p.W) + 1.0 : x);
    y = y < -2.0 ? -2.0 : (y > double(p.H) + 1.0 ? double(p.H) + 1.0 : y);
  }
  *ix = x;
  *iy = y;
  return true;
}

// The (up to) 4 taps of a source point: input offsets (pixel index * C within the image, -1 for a
// tap outside the image) and weights. Nearest gives one tap of weight 1.
struct Taps {
  int64_t off[4];
  float w[4];
  int n;
};

// floor and std::round (half away from zero) of |v| <= kFar without a libm call (the DEFAULT ISA has no
// SSE4.1 rounding instruction); exact, since v - trunc(v) is exact in double.
static inline int64_t floor_int(double v) {
  const int64_t i = int64_t(v);
  return double(i) > v ? i - 1 : i;
}
static inline int64_t round_int(double v) {
  const double a = std::fabs(v);
  int64_t i = int64_t(a);
  if (a - double(i) >= 0.5) ++i;
  return v < 0.0 ? -i : i;
}

static inline int64_t tap_offset(int64_t y, int64_t x, const ResampleParams& p) {
  return (y >= 0 && y < p.H && x >= 0 && x < p.W) ? (y * p.W + x) * p.C : -1;
}

static inline Taps taps_of(double ix, double iy, const ResampleParams& p) {
  Taps t;
  if (p.interpolation == kInterpNearest) {
    t.n = 1;
    t.off[0] = tap_offset(round_int(iy), round_int(ix), p);
    t.w[0] = 1.0f;
    return t;
  }
  const int64_t x0 = floor_int(ix), y0 = floor_int(iy);
  const double ax = ix - double(x0), ay = iy - double(y0);  // TF: (x_ceil - x) for the floor tap, (x - x_floor) for the ceil
  t.n = 4;
  t.off[0] = tap_offset(y0, x0, p);
  t.off[1] = tap_offset(y0, x0 + 1, p);
  t.off[2] = tap_offset(y0 + 1, x0, p);
  t.off[3] = tap_offset(y0 + 1, x0 + 1, p);
  t.w[0] = float((1.0 - ay) * (1.0 - ax));
  t.w[1] = float((1.0 - ay) * ax);
  t.w[2] = float(ay * (1.0 - ax));
  t.w[3] = float(ay * ax);
  return t;
}
}  // namespace resample
}  // namespace fastnn
