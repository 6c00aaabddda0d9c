"""Export Resemblyzer's GE2E speaker encoder to ONNX, once, for ``services/speaker``.

The worker then runs on onnxruntime alone (no torch, librosa or webrtcvad). The mel filterbank
is folded into the graph, so the worker only computes a power spectrogram with numpy. Run it in
a throw-away environment that has torch (``scripts/install-coqui.sh`` installs a CPU one;
webrtcvad, which Resemblyzer imports, still needs ``pkg_resources``)::

    python -m venv /tmp/export
    /tmp/export/bin/pip install torch Resemblyzer onnx onnxruntime soundfile "setuptools<81"
    /tmp/export/bin/python scripts/export_speaker_onnx.py   # from the repository root

It checks the exported model against Resemblyzer's own ``embed_utterance`` on the real
recordings in ``--audio`` and refuses to write the file if any cosine falls below 0.99.
"""

import argparse
import sys
from pathlib import Path

import librosa
import numpy as np
import soundfile
import torch
from resemblyzer import VoiceEncoder, hparams
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.speaker import encoder as ours  # noqa: E402  (numpy side of the worker)

OUT = ROOT / "services" / "speaker" / "assets" / "ge2e_encoder.onnx"
AUDIO = ROOT.parent / "shared" / "audio" / "real"


class PowerToEmbedding(nn.Module):
    """Power spectrogram frames (batch, frames, n_fft/2+1) -> unit-length embeddings."""

    def __init__(self, encoder: VoiceEncoder) -> None:
        super().__init__()
        n_fft = int(hparams.sampling_rate * hparams.mel_window_length / 1000)
        basis = librosa.filters.mel(sr=hparams.sampling_rate, n_fft=n_fft, n_mels=40)
        self.register_buffer("mel_basis", torch.from_numpy(basis.T.astype(np.float32)))
        self.encoder = encoder

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return self.encoder(torch.matmul(power, self.mel_basis))


def export(out: Path) -> None:
    """Trace the wrapped encoder into ``out`` with dynamic batch and frame axes."""
    model = PowerToEmbedding(VoiceEncoder("cpu", verbose=False)).eval()
    example = torch.rand(2, hparams.partials_n_frames, ours.N_FFT // 2 + 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (example,),
        str(out),
        input_names=["power"],
        output_names=["embedding"],
        dynamic_axes={"power": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def check(out: Path, audio: Path) -> float:
    """The lowest cosine between Resemblyzer's and our embedding over the recordings."""
    reference = VoiceEncoder("cpu", verbose=False)
    session = ours.load_session(out)
    worst = 1.0
    for wav_path in sorted(audio.glob("*.wav")):
        wav, rate = soundfile.read(wav_path, dtype="float32")
        assert rate == hparams.sampling_rate, wav_path
        wav = ours.normalize_volume(wav)
        theirs = reference.embed_utterance(wav)
        mine = ours.embed_utterance(session, wav)
        cosine = float(np.dot(theirs, mine))
        print(f"{wav_path.name}: cosine {cosine:.5f}")
        worst = min(worst, cosine)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--audio", type=Path, default=AUDIO, help="16 kHz WAVs to check on")
    args = parser.parse_args()
    tmp = args.out.with_suffix(".tmp.onnx")
    export(tmp)
    worst = check(tmp, args.audio)
    if worst < 0.99:
        tmp.unlink()
        print(f"refused: the lowest cosine {worst:.4f} is below 0.99", file=sys.stderr)
        return 1
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes); lowest cosine {worst:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
