# pumpcore.dsp: integer DFT band amplitudes, isqrt, mean (helper E). Plain asserts; runs under
# pytest and MicroPython.
import array

from pumpcore import dsp
from signals import Rng, sine_window


def test_isqrt_exact_and_floor():
    for n in (0, 1, 2, 3, 4, 15, 16, 17, 99, 100, 101, 65535, 65536, 1073741823):
        r = dsp.isqrt(n)
        assert r * r <= n < (r + 1) * (r + 1), n
    assert dsp.isqrt(-5) == 0


def test_mean_floor_and_range():
    buf = [1, 2, 3, 4, 5, 6]
    assert dsp.mean(buf, 0, 6) == 3          # 21 // 6
    assert dsp.mean(buf, 2, 4) == 3
    assert dsp.mean([-3, -4], 0, 2) == -4    # floor, like the rest of the core


def test_spectrum_amplitude_of_bin_centred_sines():
    s = dsp.Spectrum()
    for k, amp in ((1, 100), (3, 80), (5, 61), (8, 38), (2, 200)):
        s.run(sine_window(1300, amp, k * 250))
        assert s.mean_pa in (1299, 1300, 1301)
        got = s.amp_pa[k]
        assert amp - 3 <= got <= amp + 2, (k, amp, got)
        # neighbours take the Hann main lobe (half), bins two away nearly nothing
        if k + 2 < dsp.NBINS:
            assert s.amp_pa[k + 2] <= 2, (k, s.amp_pa[k + 2])


def test_band_is_root_sum_square():
    s = dsp.Spectrum()
    s.run(sine_window(0, 60, 1250, 80, 250))      # bin 5 and bin 1
    assert 58 <= s.band_pa(3, 9) <= 75            # 60 plus Hann neighbours (+-30 each)
    assert 78 <= s.band_pa(1, 2) <= 95            # 80 plus one neighbour (bin 2: 40)
    total = s.band_pa(0, 9)
    assert total * total >= s.band_pa(3, 9) ** 2  # monotone in the bins it covers


def test_noise_floor_matches_the_documented_figure():
    # white noise sigma ~15.6 Pa: ~3.7 Pa per bin, ~9 Pa over the 7 cardiac bins
    r = Rng(99)
    s = dsp.Spectrum()
    tot = 0
    for _ in range(40):
        s.run([1300 + r.noise() for _ in range(100)])
        tot += s.band_pa(3, 9)
    avg = tot // 40
    assert 6 <= avg <= 13, avg


def test_clamp_keeps_huge_inputs_in_range():
    s = dsp.Spectrum()
    buf = [0] * 100
    for i in range(100):
        buf[i] = 30000 if (i // 10) % 2 else -30000   # +-30 kPa square wave
    s.run(buf)
    for k in range(dsp.NBINS):
        assert 0 <= s.amp_pa[k] < 4000
    assert s.band_pa(0, 9) < 2 ** 15


def _direct_dft(buf):
    """The unfolded Hann-windowed DFT the folded one must equal exactly (same integers)."""
    n = dsp.WINDOW_N
    m = dsp.mean(buf, 0, n)
    xw = [(dsp.clamp(buf[i] - m, -dsp.CLAMP_PA, dsp.CLAMP_PA) * dsp.HANN_Q12[i]) >> 12 for i in range(n)]
    out = []
    for k in range(1, dsp.NBINS):
        re = 0
        im = 0
        for i in range(n):
            re += xw[i] * dsp.COS_Q12[(k * i) % n]
            im -= xw[i] * dsp.SIN_Q12[(k * i) % n]
        out.append(((re >> 12) // 25, (im >> 12) // 25))
    return m, out


def test_folded_dft_equals_the_direct_dft_exactly():
    r = Rng(7)
    s = dsp.Spectrum()
    for trial in range(12):
        amp = (5, 60, 900, 40000)[trial % 4]
        buf = [1300 + r.noise() * amp // 16 + (amp if (i * (trial + 3)) % 17 < 8 else -amp)
               for i in range(100)]
        if trial % 2:
            buf = array.array("i", buf)     # the firmware's buffers are int arrays
        s.run(buf)
        m, bins = _direct_dft(buf)
        assert s.mean_pa == m
        for k in range(1, dsp.NBINS):
            assert (s.re_pa[k], s.im_pa[k]) == bins[k - 1], (trial, k)
            re, im = bins[k - 1]
            assert s.amp_pa[k] == dsp.isqrt(re * re + im * im)


def test_mean_is_the_floor_mean():
    buf = array.array("i", [7, -3, 12000, -40000, 5, 6, 1, 0, 99])
    for start in range(len(buf)):
        for end in range(start + 1, len(buf) + 1):
            want = sum(buf[start:end]) // (end - start)
            assert dsp.mean(buf, start, end) == want


def test_dft_tables_have_the_symmetries_the_folds_rely_on():
    # Spectrum.run folds i <-> N-i and i <-> N/2-i; that is exact only with these table identities
    n = dsp.WINDOW_N
    for i in range(n):
        assert dsp.HANN_Q12[i] == dsp.HANN_Q12[(n - i) % n]
    for k in range(1, dsp.NBINS):
        sign = -1 if k % 2 else 1
        for i in range(1, n // 4 + 1):
            assert dsp.COS_Q12[(k * (n - i)) % n] == dsp.COS_Q12[(k * i) % n]
            assert dsp.SIN_Q12[(k * (n - i)) % n] == -dsp.SIN_Q12[(k * i) % n]
            assert dsp.COS_Q12[(k * (n // 2 - i)) % n] == sign * dsp.COSK[k][i]
            assert dsp.SIN_Q12[(k * (n // 2 - i)) % n] == -sign * dsp.SINK[k][i]
