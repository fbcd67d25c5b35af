"""CAM++'s front end: Kaldi fbank as 3D-Speaker computes it, via kaldi-native-fbank.

3D-Speaker (speakerlab/process/processor.py, FBank) calls torchaudio.compliance.kaldi.fbank on the
float waveform in [-1, 1] (no int16 scaling) with num_mel_bins=80, sample_frequency=16000, dither=0,
then subtracts each bin's mean over time. These are the same Kaldi options, spelled out:
25 ms frames every 10 ms (400 / 160 samples), snip_edges (only whole frames), remove the DC offset,
pre-emphasis 0.97, povey window, FFT padded to 512, power spectrum, 80 triangular mel bins on
[20 Hz, Nyquist], natural log of each bin's energy floored at FLT_EPSILON, no energy coefficient.
"""

from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np

SAMPLE_RATE = 16000
N_MELS = 80

# The options, as recorded in the fixtures (kaldi-native-fbank's field names).
OPTIONS = {
    "samp_freq": float(SAMPLE_RATE),
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "dither": 0.0,
    "preemph_coeff": 0.97,
    "remove_dc_offset": True,
    "window_type": "povey",
    "round_to_power_of_two": True,
    "snip_edges": True,
    "num_bins": N_MELS,
    "low_freq": 20.0,
    "high_freq": 0.0,  # 0 means the Nyquist frequency
    "use_energy": False,
    "use_log_fbank": True,
    "use_power": True,
    "waveform_scale": "float in [-1, 1] (int16 / 32768), no scaling to the int16 range",
}


def fbank_options() -> "knf.FbankOptions":
    o = knf.FbankOptions()
    f = o.frame_opts
    f.samp_freq = OPTIONS["samp_freq"]
    f.frame_length_ms = OPTIONS["frame_length_ms"]
    f.frame_shift_ms = OPTIONS["frame_shift_ms"]
    f.dither = OPTIONS["dither"]
    f.preemph_coeff = OPTIONS["preemph_coeff"]
    f.remove_dc_offset = OPTIONS["remove_dc_offset"]
    f.window_type = OPTIONS["window_type"]
    f.round_to_power_of_two = OPTIONS["round_to_power_of_two"]
    f.snip_edges = OPTIONS["snip_edges"]
    o.mel_opts.num_bins = OPTIONS["num_bins"]
    o.mel_opts.low_freq = OPTIONS["low_freq"]
    o.mel_opts.high_freq = OPTIONS["high_freq"]
    o.use_energy = OPTIONS["use_energy"]
    o.use_log_fbank = OPTIONS["use_log_fbank"]
    o.use_power = OPTIONS["use_power"]
    return o


def log_mel(samples: np.ndarray) -> np.ndarray:
    """16 kHz float samples in [-1, 1] -> raw log-mel fbank [frames, 80] (float32), before normalisation."""
    fb = knf.OnlineFbank(fbank_options())
    fb.accept_waveform(float(SAMPLE_RATE), np.asarray(samples, dtype=np.float32).tolist())
    fb.input_finished()
    n = fb.num_frames_ready
    if n == 0:
        return np.zeros((0, N_MELS), dtype=np.float32)
    return np.stack([np.asarray(fb.get_frame(i), dtype=np.float32) for i in range(n)])


def features(samples: np.ndarray) -> np.ndarray:
    """What CAM++ is fed: log-mel fbank minus each bin's mean over the utterance, [frames, 80] float32."""
    mel = log_mel(samples)
    return (mel - mel.mean(axis=0, keepdims=True)).astype(np.float32)


def read_wav(path) -> np.ndarray:
    """A 16 kHz mono file as float32 in [-1, 1] (soundfile; refuses other rates and channel counts)."""
    import soundfile as sf

    x, sr = sf.read(str(Path(path)), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE or x.shape[1] != 1:
        raise ValueError(f"{path}: {sr} Hz, {x.shape[1]} channel(s); expected 16 kHz mono")
    return x[:, 0]


def log_mel_numpy(samples: np.ndarray) -> np.ndarray:
    """The same fbank re-derived in float64 numpy from Kaldi's definition (a cross-check and a spec).

    Per 400-sample frame (snip_edges: frame i starts at 160 i, only whole frames): subtract the
    frame's mean; pre-emphasis y[n] = x[n] - 0.97 x[n-1] with x[-1] = x[0]; povey window
    (0.5 - 0.5 cos(2 pi n / 399))^0.85; zero-pad to 512; power spectrum of bins 0..255 (Kaldi's mel
    banks leave out the Nyquist bin); 80 triangles evenly spaced on mel = 1127 ln(1 + f / 700)
    between 20 Hz and 8000 Hz, each weighting bin k (frequency k * 16000 / 512) by its distance to
    the triangle's edges on the mel axis; ln(max(energy, FLT_EPSILON)).
    """
    x = np.asarray(samples, dtype=np.float64)
    win, hop, n_fft = 400, 160, 512
    n = 0 if len(x) < win else 1 + (len(x) - win) // hop
    if n == 0:
        return np.zeros((0, N_MELS))
    frames = np.stack([x[i * hop : i * hop + win] for i in range(n)])
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / (win - 1))) ** 0.85
    power = np.abs(np.fft.rfft(frames * window, n=n_fft, axis=1)[:, : n_fft // 2]) ** 2  # [n, 256]

    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)

    lo, hi = mel(OPTIONS["low_freq"]), mel(SAMPLE_RATE / 2)
    delta = (hi - lo) / (N_MELS + 1)
    bin_mel = mel(np.arange(n_fft // 2) * SAMPLE_RATE / n_fft)
    left = lo + delta * np.arange(N_MELS)[:, None]
    center, right = left + delta, left + 2 * delta
    up = (bin_mel - left) / (center - left)
    down = (right - bin_mel) / (right - center)
    banks = np.where((bin_mel > left) & (bin_mel < right), np.minimum(up, down), 0.0)  # [80, 256]
    return np.log(np.maximum(power @ banks.T, np.finfo(np.float32).eps))
