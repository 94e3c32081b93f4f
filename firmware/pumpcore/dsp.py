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
#
# One implementation, the Pico's: the emulator runs exactly these loops (speed is bought in pumphil).

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
# Decision: constant tables are int16 arrays (half the RAM of a tuple on the Pico); the work
# buffers below are lists (an array's item is converted on every read; a list of small ints takes
# the same 4 bytes per entry as an int32 array).
COS_Q12 = array.array("h", _COS100_Q12)
# sin(2*pi*n/100) * 4096 = cos(2*pi*(n - 25)/100) * 4096: the same table a quarter period later
SIN_Q12 = array.array("h", [_COS100_Q12[(n - 25) % 100] for n in range(100)])
# Per-bin tables for the twice-folded DFT (decision: 2 x 10 x 26 int16 ~ 1 kB of RAM removes the
# index stepping from the inner loop): COSK[k][i] = COS_Q12[(k * i) % 100],
# SINK[k][i] = SIN_Q12[(k * i) % 100], i = 0..25.
COSK = tuple(array.array("h", [_COS100_Q12[(k * i) % 100] for i in range(26)]) for k in range(10))
SINK = tuple(array.array("h", [SIN_Q12[(k * i) % 100] for i in range(26)]) for k in range(10))
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
    for i in range(start, end):
        s += buf[i]
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

    Bounds: deviations clamped to +-2000 Pa; windowed sample |xw| <= 2000; each direct DFT term
    |xw * cos| <= 8.2e6, so any regrouped partial sum (the folds below) is <= the sum of the 100
    terms' magnitudes <= 8.2e8 < 2**30 (folded inputs <= 8000, one product <= 3.3e7). Components
    are scaled to Pa (<= 4000) before squaring; a band of 10 bins sums to <= 3.2e8."""

    def __init__(self):
        q = WINDOW_N // 4
        # second fold (see run): index i = 1..24, by parity of the bin
        self.ge = [0] * q            # fs[i] + fs[50-i]  (cos, even k)
        self.go = [0] * q            # fs[i] - fs[50-i]  (cos, odd k)
        self.he = [0] * q            # fd[i] - fd[50-i]  (sin, even k)
        self.ho = [0] * q            # fd[i] + fd[50-i]  (sin, odd k)
        self.fs = [0] * (WINDOW_N // 2)    # xw[i] + xw[N-i], i = 1..49
        self.fd = [0] * (WINDOW_N // 2)    # xw[i] - xw[N-i]
        self.re_pa = [0] * NBINS
        self.im_pa = [0] * NBINS
        self.amp_pa = [0] * NBINS
        self.mean_pa = 0

    def run(self, buf) -> None:
        n = WINDOW_N
        m = mean(buf, 0, n)
        self.mean_pa = m
        hann = HANN_Q12
        # The DFT of a real input, folded twice (decision: a quarter of the multiplications of the
        # direct DFT, the same integers). The tables are exactly symmetric (tested):
        #   i <-> N-i:   cos[k(N-i)] == cos[ki],  sin[k(N-i)] == -sin[ki]   (and hann[N-i] == hann[i])
        #   i <-> N/2-i: cos[k(N/2-i)] == (-1)^k cos[ki],  sin[k(N/2-i)] == -(-1)^k sin[ki]
        # so x[i]*c + x[N-i]*c == (x[i] + x[N-i])*c, and likewise for the second fold. Every sum
        # below regroups the direct DFT's terms; integer arithmetic makes the order irrelevant.
        # `for i in range(...)` allocates nothing on MicroPython (a counted loop) and is the
        # fastest loop on CPython.
        half = n // 2
        fs = self.fs
        fd = self.fd
        for i in range(1, half):
            a = buf[i] - m
            if a > CLAMP_PA:
                a = CLAMP_PA
            elif a < -CLAMP_PA:
                a = -CLAMP_PA
            b = buf[n - i] - m
            if b > CLAMP_PA:
                b = CLAMP_PA
            elif b < -CLAMP_PA:
                b = -CLAMP_PA
            h = hann[i]
            a = (a * h) >> 12        # windowed deviations (Pa)
            b = (b * h) >> 12
            fs[i] = a + b
            fd[i] = a - b
        # i = 0 (cos = 4096, sin = 0) and i = N/2 (cos = +-4096 for even/odd k, sin = 0)
        x = buf[0] - m
        x0 = (((CLAMP_PA if x > CLAMP_PA else -CLAMP_PA if x < -CLAMP_PA else x) * hann[0]) >> 12) << 12
        x = buf[half] - m
        x50 = (((CLAMP_PA if x > CLAMP_PA else -CLAMP_PA if x < -CLAMP_PA else x) * hann[half]) >> 12) << 12
        q = half // 2
        ge = self.ge
        go = self.go
        he = self.he
        ho = self.ho
        for i in range(1, q):
            a = fs[i]
            b = fs[half - i]
            ge[i] = a + b
            go[i] = a - b
            a = fd[i]
            b = fd[half - i]
            he[i] = a - b
            ho[i] = a + b
        fs_q = fs[q]                    # i = N/4 pairs with itself
        fd_q = fd[q]
        # bin 0 (DC) is not computed: the mean was removed and the baseline is mean_pa; the
        # detectors use bins 1..9 only
        self.re_pa[0] = 0
        self.im_pa[0] = 0
        self.amp_pa[0] = 0
        k = 1
        while k < NBINS:
            ck = COSK[k]
            sk = SINK[k]
            re = fs_q * ck[q]
            im = -fd_q * sk[q]
            if k % 2 == 0:
                re += x0 + x50
                g = ge
                h = he
            else:
                re += x0 - x50
                g = go
                h = ho
            for i in range(1, q):
                re += g[i] * ck[i]
                im -= h[i] * sk[i]
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
