// The GRPO objective and its gradient w.r.t. the policy log-probs, on the device (GrpoLossReference is the double
// precision CPU twin).
//
// Shapes: logp, old_logp (null: on-policy, r = 1), ref_logp (null when beta = 0), dlogp (B,L) fp32; mask (B,L) int32 (the weight m of each token: 1 on completion
// tokens, 0 elsewhere); adv (B) fp32; stats (B,5) fp32 scratch; result (4) fp32 = {loss, mean ratio, clip fraction,
// mean KL}.
//   r  = exp(logp - old),  rc = clamp(r, lo, hi),  u = r*A,  c = rc*A
//   pt = -min(u, c) + beta * kl,  kl = exp(ref - logp) - (ref - logp) - 1   (k3)
//   loss = sum_b w_b sum_t m pt,   dlogp = w_b m dpt/dlogp
// with w_b = 1/max(1, sum(m)) (TOKEN), 1/(B max(1, sum_t m[b,t])) (SEQUENCE), 1/(B * max_len) (DR_GRPO).
// Gradient conventions as torch autograd: torch.min splits the gradient evenly on a tie, clamp passes it inside the
// closed interval [lo, hi].
//
// Two launches, both one 256-thread block per row b, deterministic (fixed-shape block reductions, no atomics):
//   grpo_loss_rows_kernel   writes m*dpt (unweighted) into dlogp and the row sums {m, m*pt, m*r, m*clipped, m*kl}
//                           into stats[b]
//   grpo_loss_finish_kernel every block sums stats[:,0] in the same order (the total mask), scales its row of dlogp by
//                           w_b; block 0 also writes result. B is a micro-batch (hundreds of rows at most), so each
//                           block re-reading the B row sums from L2 costs less than a third launch would.

#include "rlsr_common.cuh"

#define GL_THREADS 256
#define GL_STATS 5
#define GL_TOKEN 0
#define GL_SEQUENCE 1
#define GL_DR_GRPO 2

// k3 KL = e^d - d - 1 and e^d - 1 for d = ref - logp. Near d = 0 the subtractions cancel (fp32 e^d - 1 keeps only
// ~1e-7 absolute, while kl ~ d^2/2), so |d| < 0.1 takes the Taylor series (7 terms: truncation < 1e-10 relative).
__device__ __forceinline__ void gl_k3(float d, float& kl, float& em1) {
    if (fabsf(d) < 0.1f) {
        kl = d * d * (0.5f + d * (1.f / 6 + d * (1.f / 24 + d * (1.f / 120 + d * (1.f / 720 + d * (1.f / 5040))))));
        em1 = d + kl;
    } else {
        em1 = expf(d) - 1.f;  // exact subtraction for e^d in [0.5, 2]
        kl = em1 - d;
    }
}

// launch: grid B, block 256
extern "C" __global__ void __launch_bounds__(GL_THREADS)
grpo_loss_rows_kernel(const float* __restrict__ logp, const float* __restrict__ old_logp,
                      const float* __restrict__ ref_logp, const int* __restrict__ mask, const float* __restrict__ adv,
                      float* __restrict__ dlogp, float* __restrict__ stats, int batch, int len, float lo, float hi,
                      float beta) {
    __shared__ float red[32];
    const int b = blockIdx.x;
    if (b >= batch) return;
    const float a = adv[b];
    const bool kl_on = beta > 0.f;
    float sm = 0.f, spt = 0.f, sr = 0.f, sclip = 0.f, skl = 0.f;
    for (int t = threadIdx.x; t < len; t += blockDim.x) {
        const long long i = (long long) b * len + t;
        const float m = (float) mask[i];
        if (m == 0.f) {
            dlogp[i] = 0.f;
            continue;
        }
        const float lp = logp[i];
        const float r = old_logp != nullptr ? expf(lp - old_logp[i]) : 1.f;  // null: on-policy
        const float rc = fminf(fmaxf(r, lo), hi);
        const float u = r * a, c = rc * a;
        const float pg = -fminf(u, c);
        const float d_clipped = (r >= lo && r <= hi) ? a : 0.f;
        const float d_min = u < c ? a : u > c ? d_clipped : 0.5f * (a + d_clipped);
        float dpt = -d_min * r;
        float kl = 0.f;
        if (kl_on) {
            float em1;
            gl_k3(ref_logp[i] - lp, kl, em1);
            dpt -= beta * em1;  // beta * (1 - e^d)
        }
        dlogp[i] = m * dpt;
        sm += m;
        spt += m * (pg + beta * kl);
        sr += m * r;
        sclip += u > c ? m : 0.f;
        skl += m * kl;
    }
    sm = rlsr_block_sum(sm, red);
    spt = rlsr_block_sum(spt, red);
    sr = rlsr_block_sum(sr, red);
    sclip = rlsr_block_sum(sclip, red);
    skl = rlsr_block_sum(skl, red);
    if (threadIdx.x == 0) {
        float* s = stats + (long long) b * GL_STATS;
        s[0] = sm; s[1] = spt; s[2] = sr; s[3] = sclip; s[4] = skl;
    }
}

// launch: grid B, block 256 (after grpo_loss_rows_kernel on the same stream)
extern "C" __global__ void __launch_bounds__(GL_THREADS)
grpo_loss_finish_kernel(const float* __restrict__ stats, float* __restrict__ dlogp, float* __restrict__ result,
                        int batch, int len, int level, int max_len) {
    __shared__ float red[32];
    const int b = blockIdx.x;
    if (b >= batch) return;
    // the total mask, summed in the same order by every block
    float total = 0.f;
    for (int q = threadIdx.x; q < batch; q += blockDim.x) total += stats[(long long) q * GL_STATS];
    total = rlsr_block_sum(total, red);
    const float token_norm = fmaxf(1.f, total);
    const float dr_norm = (float) batch * (float) (max_len > 0 ? max_len : len);

    const float row_mask = stats[(long long) b * GL_STATS];
    const float w = level == GL_TOKEN ? 1.f / token_norm
                  : level == GL_SEQUENCE ? 1.f / ((float) batch * fmaxf(1.f, row_mask))
                                         : 1.f / dr_norm;
    float* row = dlogp + (long long) b * len;
    for (int t = threadIdx.x; t < len; t += blockDim.x) row[t] *= w;

    if (b == 0) {
        float loss = 0.f, rs = 0.f, cs = 0.f, ks = 0.f;
        for (int q = threadIdx.x; q < batch; q += blockDim.x) {
            const float* s = stats + (long long) q * GL_STATS;
            const float wq = level == GL_TOKEN ? 1.f / token_norm
                           : level == GL_SEQUENCE ? 1.f / ((float) batch * fmaxf(1.f, s[0]))
                                                  : 1.f / dr_norm;
            loss += wq * s[1];
            rs += s[2];
            cs += s[3];
            ks += s[4];
        }
        loss = rlsr_block_sum(loss, red);
        rs = rlsr_block_sum(rs, red);
        cs = rlsr_block_sum(cs, red);
        ks = rlsr_block_sum(ks, red);
        if (threadIdx.x == 0) {
            result[0] = loss;
            result[1] = rs / token_norm;
            result[2] = cs / token_norm;
            result[3] = ks / token_norm;
        }
    }
}
