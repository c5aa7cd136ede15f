// Image resampling op group: one affine (or projective) resample pass over a batch of NHWC images,
// with TensorFlow's ImageProjectiveTransformV3 semantics (what Keras 3's RandomRotation, RandomZoom,
// RandomTranslation and keras.ops.image.affine_transform compute; Resizing and RandomFlip are affine
// transforms too).
//
// Output pixel (ox, oy) of image b reads the input at
//   k  = t6*ox + t7*oy + 1                (k == 0: the whole pixel is fill_value)
//   ix = (t0*ox + t1*oy + t2) / k,   iy = (t3*ox + t4*oy + t5) / k
// with t = transforms[b * tstride .. + 8] (tstride 0: one transform for every image). The point is
// first mapped by the fill mode (map_coord below), then interpolated (nearest: std::round, half away
// from zero; bilinear: the 4 taps floor/floor+1); a tap outside the image reads fill_value.
// Coordinates are computed in double: products of float entries and integer pixel indices are
// exact, so every ISA (with or without FMA contraction) and the reference find the same taps.
#pragma once
#include <cmath>
#include <cstdint>

namespace fastnn {
enum ResampleInterp : int { kInterpNearest = 0, kInterpBilinear = 1 };
enum FillMode : int { kFillReflect = 0, kFillWrap = 1, kFillConstant = 2, kFillNearest = 3 };

// x is (B,H,W,C), y is (B,OH,OW,C), transforms is (B or 1, 8) (tstride 8 or 0).
struct ResampleParams {
  int64_t B, H, W, C, OH, OW, tstride;
  int interpolation, fill_mode;
  float fill_value;
};

struct ImageOps {
  void (*resample_forward)(float* y, const float* x, const float* transforms, const ResampleParams& p);
  // dx (B,H,W,C) = the adjoint of the forward (each tap's weight times dy, summed); taps that read
  // fill_value carry no gradient. The transforms get none (they are random constants).
  void (*resample_backward)(float* dx, const float* dy, const float* transforms, const ResampleParams& p);
};

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
  const double k = double(t[6]) * dx + double(t[7]) * dy + 1.0;
  if (k == 0.0) return false;
  double x = (double(t[0]) * dx + double(t[1]) * dy + double(t[2])) / k;
  double y = (double(t[3]) * dx + double(t[4]) * dy + double(t[5])) / k;
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

static inline int64_t tap_offset(int64_t y, int64_t x, const ResampleParams& p) {
  return (y >= 0 && y < p.H && x >= 0 && x < p.W) ? (y * p.W + x) * p.C : -1;
}

static inline Taps taps_of(double ix, double iy, const ResampleParams& p) {
  Taps t;
  if (p.interpolation == kInterpNearest) {
    t.n = 1;
    t.off[0] = tap_offset(int64_t(std::round(iy)), int64_t(std::round(ix)), p);
    t.w[0] = 1.0f;
    return t;
  }
  const double fx = std::floor(ix), fy = std::floor(iy);
  const int64_t x0 = int64_t(fx), y0 = int64_t(fy);
  const double ax = ix - fx, ay = iy - fy;  // TF: (x_ceil - x) for the floor tap, (x - x_floor) for the ceil
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
