"""Compare consentune's numpy musicnn with the original TensorFlow package on real audio.

Run in the same throw-away environment as tools/convert_musicnn.py, from the repository root:

    /tmp/musicnn-venv/bin/pip install tf_keras   # musicnn builds its graph with tf.compat.v1.layers
    TF_USE_LEGACY_KERAS=1 /tmp/musicnn-venv/bin/python tools/validate_musicnn.py MANIFEST.tsv [N_FILES]

MANIFEST.tsv is the music corpus manifest (a ``path`` column).  For each of
N files (spread over the manifest), a 30-s excerpt from the middle is tagged
three ways with the MTT model:

A. network port: the same float32 input patches through the original
   TensorFlow graph (checkpoint as shipped) and our numpy forward pass
   (float16-stored weights): max |difference| of tag probabilities and of the
   penultimate features;
B. front end: on the excerpt scaled to a -20 dBFS peak (no float16 overflow),
   musicnn's own librosa/float16 input vs our float32 log-mel: max |difference|
   of the inputs, of the resulting tags, and top-5 agreement;
C. the upstream float16 front end at the original level: how many files
   overflow to inf, and how its top-5 tags agree with the float32 path.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

PORT = Path(__file__).resolve().parents[1] / "src" / "consentune" / "organize"


def _load_port():  # type: ignore[no-untyped-def]
    """Import autotag.py by path: consentune's package imports need its whole dependency set."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("musicnn_port", PORT / "autotag.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    with np.load(PORT / "data" / "musicnn_mtt.npz") as data:
        weights = {k: data[k] for k in data.files if k != "labels"}
        labels = tuple(json.loads(bytes(data["labels"]).decode()))
    return module, module.Musicnn(weights, labels)


def _tensorflow_model():  # type: ignore[no-untyped-def]
    """The original graph and checkpoint, exactly as musicnn's extractor builds them."""
    import musicnn
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
    is_training = tf.compat.v1.placeholder(tf.bool)
    logits, *_rest, penultimate = models.define_model(x, is_training, "MTT_musicnn", 50)
    tags = tf.nn.sigmoid(logits)
    session = tf.compat.v1.Session()
    session.run(tf.compat.v1.global_variables_initializer())
    tf.compat.v1.train.Saver().restore(session, str(Path(musicnn.__file__).parent / "MTT_musicnn") + "/")

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = session.run([tags, penultimate], feed_dict={x: batch, is_training: False})
        return np.asarray(out[0]), np.asarray(out[1])

    return run


def _top5(taggram: np.ndarray) -> set[int]:
    return set(np.argsort(-taggram.mean(axis=0))[:5].tolist())


def main(manifest: Path, n_files: int) -> None:
    import librosa
    import soundfile as sf
    from musicnn.extractor import batch_data

    port_module, model = _load_port()
    log_mel, patches = port_module.log_mel, port_module.patches
    original = _tensorflow_model()
    with manifest.open() as handle:
        paths = [row["path"] for row in csv.DictReader(handle, delimiter="\t")]
    picks = [paths[i] for i in np.linspace(0, len(paths) - 1, n_files).round().astype(int)]
    net_tag: list[float] = []
    net_emb: list[float] = []
    front_in: list[float] = []
    front_tag: list[float] = []
    top5_front: list[float] = []
    top5_loud: list[float] = []
    overflow_files = patches_seen = 0
    with tempfile.TemporaryDirectory() as tmp:
        for number, path in enumerate(picks):
            audio, _ = librosa.load(path, sr=16_000)
            middle = max(0, audio.size // 2 - 15 * 16_000)
            excerpt = audio[middle : middle + 30 * 16_000].astype(np.float32)
            # A. network port: identical float32 input patches through TensorFlow and numpy
            ours_patches = patches(log_mel(excerpt))
            tf_tags, tf_emb = original(ours_patches)
            logits, emb = model.forward(ours_patches)
            np_tags = 1 / (1 + np.exp(-logits))
            net_tag.append(np.abs(np_tags - tf_tags).max())
            net_emb.append(np.abs(emb - tf_emb).max())
            patches_seen += len(ours_patches)
            # B. front end on audio quiet enough for float16 (peak -20 dBFS): upstream mel vs ours
            quiet = excerpt / max(1e-9, float(np.abs(excerpt).max())) * 0.1
            wav = Path(tmp) / f"q{number}.wav"
            sf.write(wav, quiet, 16_000, subtype="FLOAT")
            upstream, _ = batch_data(str(wav), 187, 187)
            mine = patches(log_mel(quiet))
            rows = min(len(upstream), len(mine))
            front_in.append(np.abs(upstream[:rows].astype(np.float32) - mine[:rows]).max())
            up_tags, _ = original(upstream[:rows].astype(np.float32))
            my_tags, _ = original(mine[:rows])
            front_tag.append(np.abs(up_tags - my_tags).max())
            top5_front.append(len(_top5(up_tags) & _top5(my_tags)) / 5)
            # C. the upstream float16 front end on the audio as it is
            wav = Path(tmp) / f"x{number}.wav"
            sf.write(wav, excerpt, 16_000, subtype="FLOAT")
            loud, spectrogram = batch_data(str(wav), 187, 187)
            if np.isinf(spectrogram).any():
                overflow_files += 1
            loud_tags, _ = original(np.nan_to_num(loud.astype(np.float32), posinf=np.finfo(np.float32).max))
            top5_loud.append(len(_top5(loud_tags[:rows]) & _top5(tf_tags[:rows])) / 5)
            print(
                f"{Path(path).name}: net |dp| {net_tag[-1]:.1e}, emb {net_emb[-1]:.1e}; "
                f"front-end input {front_in[-1]:.1e}, tags {front_tag[-1]:.1e}; inf in upstream mel: "
                f"{int(np.isinf(spectrogram).sum())}"
            )
    print(f"files {len(picks)}, patches {patches_seen}")
    print(f"A network port, same float32 input: max |dp| tags {max(net_tag):.2e}, penultimate {max(net_emb):.2e}")
    print(
        f"B front end at -20 dBFS peak (no overflow): max |d input| {max(front_in):.2e}, max |dp| tags "
        f"{max(front_tag):.2e}, top-5 agreement {np.mean(top5_front):.3f}"
    )
    print(
        f"C upstream float16 front end at original level: {overflow_files}/{len(picks)} files overflow to inf; "
        f"top-5 agreement with the float32 path {np.mean(top5_loud):.3f}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10)
