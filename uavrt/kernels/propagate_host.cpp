// Host (CPU) build of the propagation kernels: the per-pixel code of propagate.h in plain loops.
// Built with g++ -O2 -shared -fPIC -ffp-contract=off at first use and called through ctypes.
// Layouts (all contiguous): latent frames are channel planes sC apart inside a batch item sB
// apart; flows are two component planes fC apart inside a batch item fB apart.
#include "propagate.h"

namespace {

template <typename T>
void step_all(const T* prev, const T* cur, T* out, const float* flow, const float* check, int B, int C, int H,
              int W, long long sB, long long sC, long long fB, long long fC, int nearest, int copy, float fuse_w,
              float fuse_c, float alpha1, float alpha2) {
    const UavStep p = uav_make_step(C, H, W, sC, fC, nearest, copy, fuse_w, fuse_c, alpha1, alpha2);
    for (int b = 0; b < B; ++b)
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x)
                uav_propagate_pixel(prev + b * sB, cur + b * sB, out + b * sB, flow + b * fB, check + b * fB, p, x, y);
}

template <typename T>
void warp_all(const T* x, T* out, const float* flow, int N, int C, int H, int W, long long sB, long long sC,
              long long fB, long long fC, int nearest) {
    for (int b = 0; b < N; ++b)
        for (int py = 0; py < H; ++py)
            for (int px = 0; px < W; ++px)
                uav_warp_pixel(x + b * sB, out + b * sB, flow + b * fB, C, H, W, sC, fC, nearest, px, py);
}

}  // namespace

extern "C" {

// Bumped whenever a signature below changes; the Python side refuses a mismatching library.
int uav_abi_version() { return 1; }

int uav_propagate_step_f32(const float* prev, const float* cur, float* out, const float* flow, const float* check,
                           int B, int C, int H, int W, long long sB, long long sC, long long fB, long long fC,
                           int nearest, int copy, float fuse_w, float fuse_c, float alpha1, float alpha2) {
    step_all(prev, cur, out, flow, check, B, C, H, W, sB, sC, fB, fC, nearest, copy, fuse_w, fuse_c, alpha1, alpha2);
    return 0;
}

int uav_propagate_step_f16(const void* prev, const void* cur, void* out, const float* flow, const float* check,
                           int B, int C, int H, int W, long long sB, long long sC, long long fB, long long fC,
                           int nearest, int copy, float fuse_w, float fuse_c, float alpha1, float alpha2) {
    step_all((const uav_half*)prev, (const uav_half*)cur, (uav_half*)out, flow, check, B, C, H, W, sB, sC, fB, fC,
             nearest, copy, fuse_w, fuse_c, alpha1, alpha2);
    return 0;
}

int uav_flow_warp_f32(const float* x, float* out, const float* flow, int N, int C, int H, int W, long long sB,
                      long long sC, long long fB, long long fC, int nearest) {
    warp_all(x, out, flow, N, C, H, W, sB, sC, fB, fC, nearest);
    return 0;
}

int uav_flow_warp_f16(const void* x, void* out, const float* flow, int N, int C, int H, int W, long long sB,
                      long long sC, long long fB, long long fC, int nearest) {
    warp_all((const uav_half*)x, (uav_half*)out, flow, N, C, H, W, sB, sC, fB, fC, nearest);
    return 0;
}

// mask: [N, H, W] float 0/1
int uav_fb_check_f32(const float* fw, const float* bw, float* mask, int N, int H, int W, long long fB, long long fC,
                     float alpha1, float alpha2) {
    for (int b = 0; b < N; ++b)
        for (int py = 0; py < H; ++py)
            for (int px = 0; px < W; ++px)
                mask[(long long)b * H * W + (long long)py * W + px] =
                    uav_check_pixel(fw + b * fB, bw + b * fB, H, W, fC, alpha1, alpha2, px, py);
    return 0;
}

// float32 <-> float16 bit conversions used by the f16 entry points (exposed for testing).
void uav_f32_to_f16(const float* src, unsigned short* dst, long long n) {
    for (long long i = 0; i < n; ++i) dst[i] = uav_float_to_half_bits(src[i]);
}

void uav_f16_to_f32(const unsigned short* src, float* dst, long long n) {
    for (long long i = 0; i < n; ++i) dst[i] = uav_half_bits_to_float(src[i]);
}

}  // extern "C"
