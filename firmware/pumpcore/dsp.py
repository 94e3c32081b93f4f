# Integer signal processing for the detectors (issue 5). Pure integer arithmetic, no allocation in
# the per-window / per-capture functions: every buffer is preallocated in __init__ or passed in.
#
# Sampling contract (docs/detectors.md): sensor samples are integer Pa at 25 Hz (40 ms apart).
# A sensing window is WINDOW_N = 100 samples (4 s); a stroke capture is a pre-stroke mean of 5
# samples plus up to 50 samples after the stroke.
#
# Bound discipline (Pico small ints < 2**30): every function documents the largest intermediate.
# Inputs are clamped around their mean to +-CLAMP_PA before multiplication so no product can leave
# the small-int range, whatever the sensor returns.

import array

WINDOW_N = 100          # samples per sensing window (4 s at 25 Hz); the DFT tables are for N = 100
SAMPLE_MS = 40          # 25 Hz
CLAMP_PA = 2000         # deviations from the window mean are clamped to +-2000 Pa before the DFT
NBINS = 10              # bins 0..9 are computed (0.25 Hz apart: bin k = k * 0.25 Hz)

# cos(2*pi*n/100) * 4096, n = 0..99 (generated offline; sin(x) = cos(x - quarter period), and the
# quarter period is exactly 25 entries).
_COS100_Q12 = (
    4096, 4088, 4064, 4023, 3967, 3896, 3808, 3706, 3589, 3458, 3314, 3156, 2986, 2804, 2611,
    2408, 2195, 1973, 1744, 1508, 1266, 1019, 768, 513, 257, 0, -257, -513, -768, -1019, -1266,
    -1508, -1744, -1973, -2195, -2408, -2611, -2804, -2986, -3156, -3314, -3458, -3589, -3706,
    -3808, -3896, -3967, -4023, -4064, -4088, -4096, -4088, -4064, -4023, -3967, -3896, -3808,
    -3706, -3589, -3458, -3314, -3156, -2986, -2804, -2611, -2408, -2195, -1973, -1744, -1508,
    -1266, -1019, -768, -513, -257, 0, 257, 513, 768, 1019, 1266, 1508, 1744, 1973, 2195, 2408,
    2611, 2804, 2986, 3156, 3314, 3458, 3589, 3706, 3808, 3896, 3967, 4023, 4064, 4088,
)
COS_Q12 = array.array("h", _COS100_Q12)
# sin(2*pi*n/100) * 4096 = cos(2*pi*(n - 25)/100) * 4096: the same table a quarter period later
SIN_Q12 = array.array("h", [_COS100_Q12[(n - 25) % 100] for n in range(100)])
# Per-bin folded tables (decision: 2 x 10 x 50 int16 = 2 kB of RAM removes the index stepping from the
# DFT's inner loop):
# COSK[k][i] = COS_Q12[(k * i) % 100] and SINK[k][i] = SIN_Q12[(k * i) % 100], i = 0..49.
COSK = tuple(array.array("h", [_COS100_Q12[(k * i) % 100] for i in range(50)]) for k in range(10))
SINK = tuple(array.array("h", [SIN_Q12[(k * i) % 100] for i in range(50)]) for k in range(10))
# Hann window w[n] = (1 - cos(2*pi*n/N)) / 2, in Q12 (0..4096).
HANN_Q12 = array.array("h", [(4096 - c) // 2 for c in _COS100_Q12])


def isqrt(n: int) -> int:
    """Floor square root of a non-negative int (Newton). No allocation for n < 2**30."""
    if n <= 0:
        return 0
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x


def mean(buf, start: int, end: int) -> int:
    """Floor mean of buf[start:end] (end > start). Largest intermediate: the sum, so callers keep
    (end - start) * max|sample| < 2**30 (100 samples of a few thousand Pa is far below)."""
    s = 0
    i = start
    while i < end:
        s += buf[i]
        i += 1
    return s // (end - start)


def clamp(x: int, lo: int, hi: int) -> int:
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


class Spectrum:
    """Hann-windowed DFT of one 100-sample window, bins 0..NBINS-1 (0.25 Hz apart).

    After `run(buf)`: `self.mean_pa` is the window mean (the baseline) and `self.amp_pa[k]` is the
    amplitude in Pa a pure sine centred on bin k would have (|X_k| / 25: Hann coherent gain 1/2,
    one-sided spectrum N/2). Noise floor for white noise of sigma 15 Pa: ~3.7 Pa per bin.
    `band_pa(k0, k1)` is the root-sum-square of bins k0..k1 inclusive, in Pa.

    Bounds: deviations clamped to +-2000 Pa; windowed sample |xw| <= 2000; each DFT term
    |xw * cos| <= 8.2e6; sum of 100 terms <= 8.2e8 < 2**30. Components are scaled to Pa (<= 4000)
    before squaring; a band of 10 bins sums to <= 3.2e8."""

    def __init__(self):
        self.xw = array.array("i", [0] * WINDOW_N)    # windowed deviations, Pa
        half = WINDOW_N // 2
        self.fs = array.array("i", [0] * half)        # xw[i] + xw[N-i], i = 1..49 (index i)
        self.fd = array.array("i", [0] * half)        # xw[i] - xw[N-i]
        self.re_pa = array.array("i", [0] * NBINS)
        self.im_pa = array.array("i", [0] * NBINS)
        self.amp_pa = array.array("i", [0] * NBINS)
        self.mean_pa = 0

    def run(self, buf) -> None:
        n = WINDOW_N
        m = mean(buf, 0, n)
        self.mean_pa = m
        xw = self.xw
        hann = HANN_Q12
        # `for i in range(...)` allocates nothing on MicroPython (the compiler turns it into a
        # counted loop) and is the fastest loop on CPython
        for i in range(n):
            d = buf[i] - m
            if d > CLAMP_PA:
                d = CLAMP_PA
            elif d < -CLAMP_PA:
                d = -CLAMP_PA
            xw[i] = (d * hann[i]) >> 12
        # Fold the real input (decision: half the multiplications, same integers). The tables are
        # exactly symmetric: cos[(k*(N-i)) % N] == cos[(k*i) % N] and sin[...] == -sin[(k*i) % N],
        # so x[i]*cos + x[N-i]*cos == (x[i] + x[N-i])*cos and likewise with the difference for sin.
        # Every sum below equals the unfolded DFT's sum exactly (integer arithmetic, any order).
        half = n // 2
        fs = self.fs
        fd = self.fd
        for i in range(1, half):
            a = xw[i]
            b = xw[n - i]
            fs[i] = a + b
            fd[i] = a - b
        x0 = xw[0] << 12                 # i = 0: cos = 4096, sin = 0
        x50 = xw[half] << 12             # i = N/2: cos = +-4096 (k even / odd), sin = 0
        # bin 0 (DC) is not computed: the mean was removed and the baseline is mean_pa; the
        # detectors use bins 1..9 only
        self.re_pa[0] = 0
        self.im_pa[0] = 0
        self.amp_pa[0] = 0
        k = 1
        while k < NBINS:
            re = x0 + (x50 if k % 2 == 0 else -x50)
            im = 0
            ck = COSK[k]
            sk = SINK[k]
            for i in range(1, half):
                re += fs[i] * ck[i]
                im -= fd[i] * sk[i]
            # >> 12 undoes the Q12 table; // 25 converts |X_k| to a sine amplitude in Pa.
            re = (re >> 12) // 25
            im = (im >> 12) // 25
            self.re_pa[k] = re
            self.im_pa[k] = im
            self.amp_pa[k] = isqrt(re * re + im * im)
            k += 1

    def band_pa(self, k0: int, k1: int) -> int:
        s = 0
        k = k0
        while k <= k1:
            a = self.amp_pa[k]
            s += a * a
            k += 1
        return isqrt(s)
