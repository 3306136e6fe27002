// Per-pixel pieces of Upscale-A-Video's training-free latent propagation.
//
// One header, two compilers: NVRTC (CUDA C++, device code in propagate.cu) and g++ (host code in
// propagate_host.cpp). Both run exactly the same float32 arithmetic, in the same order as the
// official PyTorch code on CPU, so the masks match the golden vectors bit for bit:
//   flow_warp:  vgrid = grid + flow; g = 2*vgrid / max(W-1, 1) - 1  (flow_warp's normalisation)
//               x = (g + 1) * ((W-1) / 2)                            (grid_sample, align_corners)
//   bilinear:   torch's CPU weights  nw = (1-(y-floor y)) * (1-(x-floor x)) ...,
//               sum fma(se, v, fma(sw, v, fma(ne, v, nw*v))), corners outside the frame read 0
//   nearest:    rint (ties to even), outside the frame reads 0
//   check:      |fw + bw(x+fw)|^2 < a1*(|fw|^2 + |bw(x+fw)|^2) + a2   (bw warped bilinearly)
// Apart from the explicit fmaf in the bilinear sum, both builds must not contract a*b+c into
// FMAs (g++ -ffp-contract=off, NVRTC --fmad=false): the reference runs those as separate torch
// ops, each rounded, and a fused multiply-add would flip masks near the threshold.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define UAV_CUDA 1
#include <cuda_fp16.h>
#else
// g++: the CUDA qualifiers mean nothing on the host.
#define __host__
#define __device__
#include <math.h>
#include <string.h>
#endif

#define UAV_HD __host__ __device__ inline

// ---------------------------------------------------------------------------------------------
// element access: latents are float or half, math is always float
// ---------------------------------------------------------------------------------------------

// Every access to a kernel argument's memory goes through uav_load / uav_store. The CPU emulator
// of the CUDA launch (propagate_emu.cpp) defines UAV_ACCESS_OK to check each address against the
// tensors the launch was given (a GPU would fault); elsewhere it is `true` and compiles away.
#ifndef UAV_ACCESS_OK
#define UAV_ACCESS_OK(ptr) true
#endif

UAV_HD float uav_load(const float* p, long long i) { return UAV_ACCESS_OK(p + i) ? p[i] : 0.0f; }
UAV_HD void uav_store(float* p, long long i, float v) {
    if (UAV_ACCESS_OK(p + i)) p[i] = v;
}

#ifdef UAV_CUDA
typedef __half uav_half;
__device__ inline float uav_load(const __half* p, long long i) { return __half2float(p[i]); }
__device__ inline void uav_store(__half* p, long long i, float v) { p[i] = __float2half_rn(v); }
#else
// IEEE binary16 stored as its bits; converted in software so the host build needs no
// compiler extension (_Float16) and rounds exactly like __float2half_rn / torch's .half().
struct uav_half {
    unsigned short bits;
};

inline float uav_half_bits_to_float(unsigned short h) {
    unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
    unsigned int exp = (h >> 10) & 0x1fu;
    unsigned int man = h & 0x3ffu;
    unsigned int out;
    if (exp == 0x1fu) {  // inf / nan (keep the payload)
        out = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {  // normal
        out = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {  // signed zero
        out = sign;
    } else {  // subnormal: renormalise
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while ((man & 0x400u) == 0);
        out = sign | ((unsigned int)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &out, sizeof f);
    return f;
}

inline unsigned short uav_float_to_half_bits(float f) {
    unsigned int x;
    memcpy(&x, &f, sizeof x);
    unsigned int sign = (x >> 16) & 0x8000u;
    unsigned int absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);  // nan: canonical quiet nan
    if (absx == 0x7f800000u) return (unsigned short)(sign | 0x7c00u); // inf
    if (absx >= 0x477ff000u) {  // rounds to >= 65520 -> inf
        return (unsigned short)(sign | 0x7c00u);
    }
    if (absx < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
        if (absx < 0x33000000u) return (unsigned short)sign;  // < 2^-25: rounds to 0
        unsigned int e = absx >> 23;
        unsigned int man = (absx & 0x7fffffu) | 0x800000u;
        unsigned int shift = 126u - e;  // value = man * 2^(e-150) = (man >> shift) units of 2^-24
        unsigned int half_man = man >> shift;
        unsigned int rem = man & ((1u << shift) - 1u);
        unsigned int halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (half_man & 1u))) half_man++;
        return (unsigned short)(sign | half_man);
    }
    // normal: rebias the exponent, round the mantissa to 10 bits, ties to even
    unsigned int h = ((absx >> 13) - (112u << 10));
    unsigned int rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (unsigned short)(sign | h);
}

inline float uav_load(const uav_half* p, long long i) {
    return UAV_ACCESS_OK(p + i) ? uav_half_bits_to_float(p[i].bits) : 0.0f;
}
inline void uav_store(uav_half* p, long long i, float v) {
    if (UAV_ACCESS_OK(p + i)) p[i].bits = uav_float_to_half_bits(v);
}
#endif

// ---------------------------------------------------------------------------------------------
// sampling positions
// ---------------------------------------------------------------------------------------------

// Input coordinate (pixels) that grid_sample(align_corners=True) reads for output index `i`
// displaced by `d`. Not simply i + d: flow_warp normalises to [-1, 1] and grid_sample maps back,
// and both roundings are reproduced so nearest ties and frame borders fall the same way.
UAV_HD float uav_source_coord(int i, float d, int size) {
    float v = (float)i + d;                                  // vgrid = grid + flow
    float denom = (float)(size - 1 > 1 ? size - 1 : 1);      // max(w - 1, 1)
    float g = 2.0f * v / denom - 1.0f;                       // normalised grid
    return (g + 1.0f) * ((float)(size - 1) / 2.0f);          // unnormalised (exact scale factor)
}

// Bilinear footprint of one sampling position: 4 corner offsets, weights and in-frame flags.
struct UavBilinear {
    long long o_nw, o_ne, o_sw, o_se;
    float w_nw, w_ne, w_sw, w_se;
    bool in_nw, in_ne, in_sw, in_se;
};

UAV_HD UavBilinear uav_bilinear_setup(float x, float y, int H, int W) {
    UavBilinear b;
    float x_w = floorf(x), y_n = floorf(y);
    // distances to each side, then weights as torch's CPU kernel forms them
    float w = x - x_w, e = 1.0f - w;
    float n = y - y_n, s = 1.0f - n;
    b.w_nw = s * e;
    b.w_ne = s * w;
    b.w_sw = n * e;
    b.w_se = n * w;
    // bounds are tested in float so huge or NaN positions never overflow an int conversion;
    // NaN compares false, so such corners are simply outside (torch: INT_MIN, also outside)
    float x_e = x_w + 1.0f, y_s = y_n + 1.0f;
    bool w_ok = x_w > -1.0f && x_w < (float)W;
    bool e_ok = x_e > -1.0f && x_e < (float)W;
    bool n_ok = y_n > -1.0f && y_n < (float)H;
    bool s_ok = y_s > -1.0f && y_s < (float)H;
    b.in_nw = n_ok && w_ok;
    b.in_ne = n_ok && e_ok;
    b.in_sw = s_ok && w_ok;
    b.in_se = s_ok && e_ok;
    long long ix_w = w_ok ? (long long)x_w : 0, ix_e = e_ok ? (long long)x_e : 0;
    long long iy_n = n_ok ? (long long)y_n : 0, iy_s = s_ok ? (long long)y_s : 0;
    b.o_nw = iy_n * W + ix_w;
    b.o_ne = iy_n * W + ix_e;
    b.o_sw = iy_s * W + ix_w;
    b.o_se = iy_s * W + ix_e;
    return b;
}

template <typename T>
UAV_HD float uav_bilinear_read(const T* plane, const UavBilinear& b) {
    float v_nw = b.in_nw ? uav_load(plane, b.o_nw) : 0.0f;
    float v_ne = b.in_ne ? uav_load(plane, b.o_ne) : 0.0f;
    float v_sw = b.in_sw ? uav_load(plane, b.o_sw) : 0.0f;
    float v_se = b.in_se ? uav_load(plane, b.o_se) : 0.0f;
    // torch's vectorised CPU kernel writes (nw*v + ne*v) + sw*v + se*v, and its AVX2/AVX-512
    // builds are compiled with FMA contraction, which turns that sum into this exact chain (the
    // golden vectors carry it: plain mul+add differs by 1 ulp at about a quarter of samples).
    // Explicit fmaf is exact on any compiler or GPU, unlike relying on contraction.
    float acc = v_nw * b.w_nw;
    acc = fmaf(v_ne, b.w_ne, acc);
    acc = fmaf(v_sw, b.w_sw, acc);
    return fmaf(v_se, b.w_se, acc);
}

struct UavNearest {
    long long o;
    bool in;
};

UAV_HD UavNearest uav_nearest_setup(float x, float y, int H, int W) {
    UavNearest r;
    float xr = rintf(x), yr = rintf(y);  // round half to even (torch: nearbyint / _mm_round_ps)
    r.in = xr > -1.0f && xr < (float)W && yr > -1.0f && yr < (float)H;
    r.o = r.in ? (long long)yr * W + (long long)xr : 0;
    return r;
}

template <typename T>
UAV_HD float uav_nearest_read(const T* plane, const UavNearest& r) {
    return r.in ? uav_load(plane, r.o) : 0.0f;
}

// ---------------------------------------------------------------------------------------------
// occlusion mask and blend
// ---------------------------------------------------------------------------------------------

// fbConsistencyCheck at one pixel: (fu, fv) the flow used to warp, (bu, bv) the other flow
// sampled bilinearly at the warped position.
UAV_HD bool uav_flow_consistent(float fu, float fv, float bu, float bv, float alpha1, float alpha2) {
    float du = fu + bu, dv = fv + bv;
    float diff_sq = du * du + dv * dv;
    float mag_sq = (fu * fu + fv * fv) + (bu * bu + bv * bv);
    return diff_sq < alpha1 * mag_sq + alpha2;
}

// How a warped value is merged with the current frame's value.
struct UavBlend {
    int copy;        // 1: 'copy' mode (warped as is), 0: 'fuse'
    float fuse_w;    // fuse_scale (as float32)
    float fuse_c;    // 1 - fuse_scale (computed in double, then float32, like torch's scalar)
};

UAV_HD float uav_blend(float warped, float current, bool valid, UavBlend p) {
    float w = p.copy ? warped : warped * p.fuse_w + current * p.fuse_c;
    float m = valid ? 1.0f : 0.0f;
    // the formula, not a select: identical to the reference also for inf/nan inputs
    return m * w + (1.0f - m) * current;
}

// ---------------------------------------------------------------------------------------------
// one propagation step at one pixel, all channels
// ---------------------------------------------------------------------------------------------

struct UavStep {
    int C, H, W;
    long long sC;   // element stride between channels of the latent frames
    long long fC;   // element stride between the two flow components
    int nearest;    // 1: nearest sampling of the feature, 0: bilinear
    float alpha1, alpha2;
    UavBlend blend;
};

// The step parameters from the kernels' flat argument list (the one place that packs them, for
// the CUDA and the host entry points alike).
UAV_HD UavStep uav_make_step(int C, int H, int W, long long sC, long long fC, int nearest, int copy, float fuse_w,
                             float fuse_c, float alpha1, float alpha2) {
    UavStep p;
    p.C = C;
    p.H = H;
    p.W = W;
    p.sC = sC;
    p.fC = fC;
    p.nearest = nearest;
    p.alpha1 = alpha1;
    p.alpha2 = alpha2;
    p.blend.copy = copy;
    p.blend.fuse_w = fuse_w;
    p.blend.fuse_c = fuse_c;
    return p;
}

// prev/cur/out: channel-0 planes ([H, W], row stride W) of the propagated frame, the current
// frame and the output (out may alias cur: each pixel reads cur before writing out);
// flow: the flow that warps prev onto cur's grid, check: the opposite flow (component planes
// fC apart). (px, py): the pixel.
template <typename T>
UAV_HD void uav_propagate_pixel(const T* prev, const T* cur, T* out, const float* flow, const float* check,
                                const UavStep& p, int px, int py) {
    long long o = (long long)py * p.W + px;
    float fu = uav_load(flow, o), fv = uav_load(flow, o + p.fC);
    float x = uav_source_coord(px, fu, p.W);
    float y = uav_source_coord(py, fv, p.H);

    UavBilinear bl = uav_bilinear_setup(x, y, p.H, p.W);
    float bu = uav_bilinear_read(check, bl);
    float bv = uav_bilinear_read(check + p.fC, bl);
    bool valid = uav_flow_consistent(fu, fv, bu, bv, p.alpha1, p.alpha2);

    UavNearest nr = uav_nearest_setup(x, y, p.H, p.W);
    for (int c = 0; c < p.C; ++c) {
        long long co = (long long)c * p.sC;
        float warped = p.nearest ? uav_nearest_read(prev + co, nr) : uav_bilinear_read(prev + co, bl);
        float current = uav_load(cur + co, o);
        uav_store(out + co, o, uav_blend(warped, current, valid, p.blend));
    }
}

// flow_warp alone at one pixel (all channels): x planes sC apart, flow components fC apart.
template <typename T>
UAV_HD void uav_warp_pixel(const T* x, T* out, const float* flow, int C, int H, int W, long long sC,
                           long long fC, int nearest, int px, int py) {
    long long o = (long long)py * W + px;
    float sx = uav_source_coord(px, uav_load(flow, o), W);
    float sy = uav_source_coord(py, uav_load(flow, o + fC), H);
    UavBilinear bl = uav_bilinear_setup(sx, sy, H, W);
    UavNearest nr = uav_nearest_setup(sx, sy, H, W);
    for (int c = 0; c < C; ++c) {
        long long co = (long long)c * sC;
        uav_store(out + co, o, nearest ? uav_nearest_read(x + co, nr) : uav_bilinear_read(x + co, bl));
    }
}

// fbConsistencyCheck alone at one pixel: 1.0 where consistent, else 0.0.
UAV_HD float uav_check_pixel(const float* fw, const float* bw, int H, int W, long long fC, float alpha1,
                             float alpha2, int px, int py) {
    long long o = (long long)py * W + px;
    float fu = uav_load(fw, o), fv = uav_load(fw, o + fC);
    UavBilinear bl = uav_bilinear_setup(uav_source_coord(px, fu, W), uav_source_coord(py, fv, H), H, W);
    float bu = uav_bilinear_read(bw, bl);
    float bv = uav_bilinear_read(bw + fC, bl);
    return uav_flow_consistent(fu, fv, bu, bv, alpha1, alpha2) ? 1.0f : 0.0f;
}
