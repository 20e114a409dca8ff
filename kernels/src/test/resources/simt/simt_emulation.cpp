// Runs the CUDA kernels of native/cuda on the CPU through simt_shim.h (one std::thread per CUDA thread) and
// compares them with double-precision formulas; KernelEmulationTest compiles it with g++ (C++20) and runs it.
// Build by hand: g++ -std=c++20 -O2 -pthread -I native/cuda -I <this folder> simt_emulation.cpp
#include "simt_shim.h"
#include <cstdio>
#include <random>
#include <cstdlib>
#include <algorithm>
namespace cosk {
#include "cosine_similarity.cu"
}
namespace lpk {
#include "logprob_gather.cu"
}
namespace advk {
#include "group_advantages.cu"
}
static std::mt19937_64 rng(12345);
static float randn() { static std::normal_distribution<float> d(0.f, 1.f); return d(rng); }
static float bf(unsigned short h) { return __uint_as_float(((unsigned) h) << 16); }
static unsigned short tobf(float f) { unsigned u = __float_as_uint(f); if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16; }
static int failures = 0;
// |got - ref| <= atol * atolScale[i / rowLength] + rtol * |ref|; equal values (also infinities) and NaN vs NaN pass
static void check(const char* what, const std::vector<double>& ref, const float* got, size_t n, double atol, double rtol,
                  const float* atolScale = nullptr, size_t rowLength = 1) {
    int bad = 0; double worst = 0;
    for (size_t i = 0; i < n; ++i) {
        double e = std::fabs(got[i] - ref[i]);
        double a = atolScale ? atol * std::fabs(atolScale[i / rowLength]) : atol;
        bool ok = (!std::isnan(got[i]) && e <= a + rtol * std::fabs(ref[i])) || (double) got[i] == ref[i];
        if (std::isnan(ref[i]) && std::isnan(got[i])) ok = true;
        if (!ok) { if (bad < 5) printf("   %s [%zu] ref %.9g got %.9g\n", what, i, ref[i], got[i]); bad++; }
        if (!std::isnan(e)) worst = std::max(worst, e);
    }
    printf("%-60s %s (max |err| %.3g)\n", what, bad ? "FAIL" : "ok", worst);
    if (bad) failures++;
}
// 16-byte aligned host block + byte offset
static char* balloc(size_t bytes, int off) { char* p = (char*) aligned_alloc(256, ((bytes + 16 + 255) / 256) * 256); return p + off; }

static void testCos(int rows, int group, int d, bool bf16, int offA, int offB, int wpr = 1) {
    int arows = rows / group;
    std::vector<float> a(arows * (size_t) d), b(rows * (size_t) d);
    for (auto& x : a) x = randn();
    for (auto& x : b) x = randn();
    if (bf16) { for (auto& x : a) x = bf(tobf(x)); for (auto& x : b) x = bf(tobf(x)); }
    std::vector<double> ref(rows);
    for (int i = 0; i < rows; ++i) {
        double ab = 0, aa = 0, bb = 0;
        for (int k = 0; k < d; ++k) { double x = a[(i / group) * (size_t) d + k], y = b[i * (size_t) d + k]; ab += x * y; aa += x * x; bb += y * y; }
        ref[i] = ab / std::max(std::sqrt(aa) * std::sqrt(bb), 1e-8);
    }
    size_t es = bf16 ? 2 : 4;
    char* pa = balloc(a.size() * es, offA); char* pb = balloc(b.size() * es, offB);
    for (size_t i = 0; i < a.size(); ++i) if (bf16) ((unsigned short*) pa)[i] = tobf(a[i]); else ((float*) pa)[i] = a[i];
    for (size_t i = 0; i < b.size(); ++i) if (bf16) ((unsigned short*) pb)[i] = tobf(b[i]); else ((float*) pb)[i] = b[i];
    std::vector<float> out(rows, NAN);
    int rowsPerBlock = 8 / wpr;
    unsigned grid = (rows + rowsPerBlock - 1) / rowsPerBlock;
    if (bf16) launch(grid, 256, [&] { cosk::cosine_similarity_bf16_kernel((const unsigned short*) pa, (const unsigned short*) pb, out.data(), rows, group, d, 1e-8f, wpr); });
    else launch(grid, 256, [&] { cosk::cosine_similarity_f32_kernel((const float*) pa, (const float*) pb, out.data(), rows, group, d, 1e-8f, wpr); });
    char name[128]; snprintf(name, sizeof name, "cos %s rows=%d group=%d d=%d off=%d,%d wpr=%d", bf16 ? "bf16" : "f32", rows, group, d, offA, offB, wpr);
    check(name, ref, out.data(), rows, 1e-5, 1e-5);
}

static void testLp(int n, int v, float T, bool bf16, int outShiftElems, bool masked) {
    std::vector<float> x(n * (size_t) v);
    for (auto& e : x) e = 3.f * randn();
    if (masked) for (size_t i = 0; i < x.size(); i += 3) x[i] = -INFINITY;
    if (bf16) for (auto& e : x) e = bf(tobf(e));
    std::vector<int> t(n);
    for (int i = 0; i < n; ++i) t[i] = rng() % v;
    if (n > 2) t[1] = -100;
    if (n > 3) t[3] = v;  // out of vocabulary -> NaN
    std::vector<float> dlogp(n); for (auto& e : dlogp) e = randn();
    std::vector<double> rlse(n), rlp(n), rg(n * (size_t) v);
    for (int r = 0; r < n; ++r) {
        double m = -INFINITY; for (int j = 0; j < v; ++j) m = std::max(m, (double) x[r * (size_t) v + j]);
        double s = 0; for (int j = 0; j < v; ++j) s += std::exp((x[r * (size_t) v + j] - m) / T);
        rlse[r] = m / T + std::log(s);
        rlp[r] = t[r] < 0 ? 0 : (t[r] >= v ? NAN : x[r * (size_t) v + t[r]] / (double) T - rlse[r]);
        for (int j = 0; j < v; ++j) {
            double p = std::exp(x[r * (size_t) v + j] / (double) T - rlse[r]);
            rg[r * (size_t) v + j] = t[r] < 0 ? 0 : ((j == t[r] ? 1.0 : 0.0) - p) * dlogp[r] / T;
        }
    }
    size_t es = bf16 ? 2 : 4, total = x.size();
    char* px = balloc(total * es, 0);
    for (size_t i = 0; i < total; ++i) if (bf16) ((unsigned short*) px)[i] = tobf(x[i]); else ((float*) px)[i] = x[i];
    std::vector<float> lp(n, NAN), lse(n, NAN);
    if (bf16) launch(n, 256, [&] { lpk::logprob_gather_bf16_kernel((const unsigned short*) px, t.data(), lp.data(), lse.data(), n, v, T); });
    else launch(n, 256, [&] { lpk::logprob_gather_f32_kernel((const float*) px, t.data(), lp.data(), lse.data(), n, v, T); });
    char name[160];
    snprintf(name, sizeof name, "lp fwd %s n=%d v=%d T=%.2f%s lse", bf16 ? "bf16" : "f32", n, v, T, masked ? " masked" : "");
    check(name, rlse, lse.data(), n, 2e-5, 1e-5);
    snprintf(name, sizeof name, "lp fwd %s n=%d v=%d T=%.2f%s logp", bf16 ? "bf16" : "f32", n, v, T, masked ? " masked" : "");
    check(name, rlp, lp.data(), n, 2e-5, 1e-5);
    // backward out of place (shifted) and in place
    for (int mode = 0; mode < 2; ++mode) {
        char* po = mode == 0 ? balloc(total * es, outShiftElems * (int) es) : px;
        if (mode == 0) memset(po, 0xff, total * es);
        if (bf16) launch(n, 256, [&] { lpk::logprob_gather_backward_bf16_kernel((const unsigned short*) px, t.data(), lse.data(), dlogp.data(), (unsigned short*) po, n, v, T); });
        else launch(n, 256, [&] { lpk::logprob_gather_backward_f32_kernel((const float*) px, t.data(), lse.data(), dlogp.data(), (float*) po, n, v, T); });
        std::vector<float> g(total);
        for (size_t i = 0; i < total; ++i) g[i] = bf16 ? bf(((unsigned short*) po)[i]) : ((float*) po)[i];
        snprintf(name, sizeof name, "lp bwd %s %s shift=%d n=%d v=%d%s", bf16 ? "bf16" : "f32", mode ? "in-place" : "out", outShiftElems, n, v, masked ? " masked" : "");
        // atol per row 1e-6 * |dlogp/T|: the target's p - 1 cancels to ~ulp(1) of the row's scale
        std::vector<float> rowScale(n);
        for (int r = 0; r < n; ++r) rowScale[r] = dlogp[r] / T;
        check(name, rg, g.data(), total, 1e-6, bf16 ? 1e-2 : 5e-5, rowScale.data(), v);
    }
}

static void testAdv(int p, int g, bool scale, bool equal) {
    std::vector<float> r(p * (size_t) g);
    std::uniform_real_distribution<float> u(0, 1);
    for (auto& e : r) e = u(rng);
    if (equal) for (int q = 0; q < p; ++q) for (int i = 0; i < g; ++i) r[q * g + i] = 0.1f + 0.3f * q;
    std::vector<double> ref(r.size());
    float eps = 1e-4f;
    for (int q = 0; q < p; ++q) {
        double m = 0; for (int i = 0; i < g; ++i) m += r[q * g + i]; m /= g;
        double ss = 0; for (int i = 0; i < g; ++i) ss += (r[q * g + i] - m) * (r[q * g + i] - m);
        double sd = g > 1 ? std::sqrt(ss / (g - 1)) : 0;
        for (int i = 0; i < g; ++i) ref[q * g + i] = scale ? (r[q * g + i] - m) / (sd + eps) : r[q * g + i] - m;
    }
    std::vector<float> out(r.size(), NAN);
    if (g <= 32) launch((p + 7) / 8, 256, [&] { advk::group_advantages_kernel(r.data(), out.data(), p, g, scale, eps); });
    else launch(p, 256, [&] { advk::group_advantages_large_kernel(r.data(), out.data(), p, g, scale, eps); });
    char name[128]; snprintf(name, sizeof name, "adv p=%d g=%d scale=%d equal=%d", p, g, scale, equal);
    check(name, ref, out.data(), r.size(), equal ? 0 : 1e-5, equal ? 0 : 1e-5);
}

int main() {
    testCos(37, 1, 3, false, 0, 0);
    testCos(37, 1, 3, false, 0, 0, 8);
    testCos(11, 1, 4096, false, 0, 0, 4);
    testCos(11, 1, 4096, true, 0, 0, 2);
    testCos(7, 1, 4099, false, 4, 4, 4);
    testCos(7, 1, 2051, true, 2, 6, 2);
    testCos(48, 16, 1029, false, 0, 0, 4);
    testCos(21, 1, 1023, false, 0, 0);
    testCos(9, 1, 4096, false, 0, 0);
    testCos(9, 1, 4096, true, 0, 0);
    testCos(13, 1, 515, false, 4, 4);
    testCos(13, 1, 515, false, 4, 8);
    testCos(13, 1, 515, true, 2, 2);
    testCos(13, 1, 515, true, 2, 6);
    testCos(13, 1, 1, true, 0, 0);
    testCos(48, 16, 129, false, 0, 0);
    testCos(48, 16, 129, true, 0, 0);
    testCos(17, 1, 7, true, 14, 0);
    testLp(5, 1, 1.f, false, 0, false);
    testLp(6, 7, 0.7f, false, 1, false);
    testLp(5, 1001, 1.f, true, 1, false);
    testLp(5, 1001, 0.7f, false, 0, false);
    testLp(4, 32000, 1.f, true, 0, false);
    testLp(4, 32000, 0.9f, false, 1, false);
    testLp(3, 151936, 1.f, true, 0, false);
    testLp(4, 4099, 1.f, false, 0, true);
    testLp(4, 4099, 1.f, true, 3, true);
    testAdv(20, 16, true, false);
    testAdv(20, 16, false, false);
    testAdv(9, 1, true, false);
    testAdv(9, 32, true, false);
    testAdv(5, 7, true, true);
    testAdv(4, 33, true, false);
    testAdv(3, 1000, true, false);
    testAdv(3, 1000, false, false);
    testAdv(3, 48, true, true);
    printf("%d failures\n", failures);
    return failures != 0;
}
