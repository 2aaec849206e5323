// Weighted softmax cross-entropy (PyTorch's weighted mean: Σ w_y·ℓ / Σ w_y) and per-step
// metrics, all on the device.

#define LOSS_THREADS 256

// *out = Σ_r w[r] in double (one block of LOSS_THREADS threads; lane partials added in order).
extern "C" __global__ void weight_sum(const float* w, int rows, double* out) {
    __shared__ double part[LOSS_THREADS];
    double s = 0.0;
    for (int r = threadIdx.x; r < rows; r += LOSS_THREADS) s += (double)w[r];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int h = LOSS_THREADS / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = part[0];
}

// One thread per row: logits[r, :] ← w_y·(softmax − onehot_y)/Σw (the gradient of the weighted
// mean loss), row_loss[r] = w_y·(−log p_y), row_correct[r] = (argmax == y) (first max wins).
extern "C" __global__ void softmax_ce(float* logits, const int* labels, const float* w,
                                      int rows, int k, const double* weight_total,
                                      double* row_loss, float* row_correct) {
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    float* row = logits + (size_t)r * k;
    const int y = labels[r];
    int argmax = 0;
    float mx = __int_as_float(0xff800000);  // −∞ (no math.h under NVRTC)
    for (int c = 0; c < k; ++c)
        if (row[c] > mx) { mx = row[c]; argmax = c; }
    // −log p_y = log Σ exp(z − max) − (z_y − max): never ln(0) for logits far below the max.
    const float shifted_y = row[y] - mx;
    float sum = 0.0f;
    for (int c = 0; c < k; ++c) {
        const float e = expf(row[c] - mx);
        row[c] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    const float log_py = shifted_y - logf(sum);
    const float wy = w[r];
    row_loss[r] = (double)wy * (double)(-log_py);
    row_correct[r] = argmax == y ? 1.0f : 0.0f;
    const float scale = wy / (float)(*weight_total);
    for (int c = 0; c < k; ++c) row[c] *= inv * scale;
    row[y] -= scale;
}

// metrics[0] = Σ row_loss, metrics[1] = *weight_total, metrics[2] = Σ row_correct
// (one block of LOSS_THREADS threads; `metrics` points at this step's slot).
extern "C" __global__ void step_metrics(const double* row_loss, const float* row_correct,
                                        int rows, const double* weight_total, double* metrics) {
    __shared__ double pl[LOSS_THREADS];
    __shared__ double pc[LOSS_THREADS];
    double l = 0.0, c = 0.0;
    for (int r = threadIdx.x; r < rows; r += LOSS_THREADS) {
        l += row_loss[r];
        c += (double)row_correct[r];
    }
    pl[threadIdx.x] = l;
    pc[threadIdx.x] = c;
    __syncthreads();
    for (int h = LOSS_THREADS / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) {
            pl[threadIdx.x] += pl[threadIdx.x + h];
            pc[threadIdx.x] += pc[threadIdx.x + h];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        metrics[0] = pl[0];
        metrics[1] = *weight_total;
        metrics[2] = pc[0];
    }
}
